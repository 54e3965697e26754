const Sequencer = require('@jest/test-sequencer').default;

/**
 * The files that take longest, slowest first (measured on this machine). Jest starts the slowest
 * files first only when it has timings from an earlier run; a fresh clone (CI) has none and would
 * order by file size, so one of these could start last and run alone on one worker while the other
 * idles. Files not listed keep Jest's own order after these.
 */
const SLOW_FIRST = [
  'test/store/dynamodb/orders.test.ts',
  'test/reliability/faults.test.ts',
  'test/console/console.test.ts',
  'test/race/expiry-vs-accept.test.ts',
  'test/liveness/ap21-outage.test.ts',
  'test/liveness/ap21-isolation.test.ts',
  'test/reliability/crash-restart.test.ts',
  'test/store/dynamodb-order-store.test.ts',
  'test/ingest/ap21-poller.test.ts',
  'test/race/channel-pairs.test.ts',
  'test/cdk/synth.test.ts',
  'test/race/apace-switch.test.ts',
  'test/review/fallback-receipt-review.test.ts',
];

class SlowFirstSequencer extends Sequencer {
  sort(tests) {
    const rank = (test) => {
      const path = test.path.replace(/\\/g, '/');
      const index = SLOW_FIRST.findIndex((file) => path.endsWith(`/${file}`));
      return index === -1 ? SLOW_FIRST.length : index;
    };
    // Array.prototype.sort is stable: the unlisted files keep Jest's order.
    return [...super.sort(tests)].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = SlowFirstSequencer;
module.exports.SLOW_FIRST = SLOW_FIRST;

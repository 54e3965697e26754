import fc from 'fast-check';
import { GUARD_OFF, play, scenarioArb, type Step } from './refund-world';

describe('refund ledger under random interleavings of every event', () => {
  it('never over-refunds, never pays a refund through two channels, and the ledger always equals the refunds', () => {
    let createdRefunds = 0;
    const paidVia = { apace: 0, reversal: 0, refundid: 0 };
    fc.assert(
      fc.property(scenarioArb(), (scenario) => {
        const result = play(scenario);
        createdRefunds += result.stats.created;
        for (const channel of ['apace', 'reversal', 'refundid'] as const) paidVia[channel] += result.stats.paidVia[channel];
        if (result.problems.length) throw new Error(result.problems.join('\n'));
      }),
      { numRuns: 10_000, seed: Number(process.env.PROPERTY_SEED ?? Date.now() % 2 ** 31) },
    );
    // The scenarios must reach refunds and payouts, or the property proves nothing.
    expect(createdRefunds).toBeGreaterThan(10_000);
    for (const channel of ['apace', 'reversal', 'refundid'] as const) expect(paidVia[channel]).toBeGreaterThan(400);
  });

  const apaceThenReversal: Step[] = [
    { kind: 'create', route: 'apace', lines: [1, 0, 0], expiresInWindows: 5 },
    { kind: 'apace_create', r: 0 },
    { kind: 'apace_verify', r: 0 },
    { kind: 'tick', ms: 1_000 },
    { kind: 'expire', r: 0 },
    { kind: 'apace_cancel_call', r: 0 },
    { kind: 'reversal_submit', r: 0 },
    { kind: 'provider_result', r: 0, outcome: 'success' },
    { kind: 'apace_payout', r: 0 },
  ];

  it('refuses to leave Apace right after it allowed a payout, so the late Apace payout is the only one', () => {
    const result = play({ purchased: [1, 1, 1], steps: apaceThenReversal });
    expect(result.problems).toEqual([]);
    expect(result.order.refunds.r0).toMatchObject({ state: 'offered', channel: 'apace' });
  });

  it('pays twice without the claim-window guard: the guard is what prevents it', () => {
    const result = play({ purchased: [1, 1, 1], steps: apaceThenReversal }, GUARD_OFF);
    expect(result.problems.join('\n')).toMatch(/refund r0 paid 2 times/);
  });

  it('finds that double payout on its own when the guard is off (the property has teeth)', () => {
    const outcome = fc.check(
      fc.property(scenarioArb(1), (scenario) => play(scenario, GUARD_OFF).problems.length === 0),
      { numRuns: 20_000, seed: 42 },
    );
    expect(outcome.failed).toBe(true);
    const counterexample = outcome.counterexample?.[0];
    expect(counterexample && play(counterexample, GUARD_OFF).problems.join('\n')).toMatch(/paid 2 times/);
    expect(counterexample && play(counterexample).problems).toEqual([]);
  });
});

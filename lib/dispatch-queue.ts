import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * How the dispatcher's numbers fit together (docs/design.md §2.4, §2.5). The dispatcher function
 * gets these values as its environment (lib/functions.ts), so the arithmetic below is what runs;
 * test/cdk/dispatch-budget.test.ts checks it on the synthesized template.
 *
 *   provider call       ≤ 10 s (each connector's timeout; Optty: token + call = 20 s)
 *   start a call only if  remaining > call + 3 s margin (to record the outcome)
 *                         → any provider's call can start in a fresh invocation: 30 s > 20 s + 3 s
 *   Lambda timeout      = 30 s; every call is also cut at the invocation's deadline
 *   lease               = 120 s > 30 s: a claim outlives the invocation that took it, so the
 *                         sweeper never takes over a call that may still be running
 *   visibility timeout  = 180 s = 6 × 30 s (AWS's advice for a Lambda consumer: retries of a
 *                         throttled batch fit in it), and ≥ the Lambda timeout, as SQS requires
 *   batch               = 10 orders, dispatched in parallel, each order's refunds in sequence;
 *                         a refund whose call does not fit is handed back (batchItemFailures) and
 *                         returns after the visibility timeout — or sooner, rung by the sweeper
 *                         (every minute), since its refund is still due in the table
 *   maxConcurrency      = 5 concurrent batches at most: a backlog cannot stampede the providers,
 *                         and no reserved concurrency is needed (which a new account's quota of
 *                         10 cannot give)
 *   maxReceiveCount     = 5: an order failing five times goes to the DLQ (alarmed); its refunds
 *                         stay due in the table, so the sweeper still finds them
 */
export const DISPATCH_BUDGET = {
  /** Per request; the dispatcher counts Optty's operations as two (lambdas/functions/dispatch-runtime.ts). */
  providerCallTimeout: Duration.seconds(10),
  callMargin: Duration.seconds(3),
  functionTimeout: Duration.seconds(30),
  lease: Duration.minutes(2),
  visibilityTimeout: Duration.minutes(3),
  batchSize: 10,
  maxConcurrency: 5,
  maxReceiveCount: 5,
} as const;

/** A dispatcher run may take this long before SQS hands its message to another consumer. */
export const DISPATCH_VISIBILITY_TIMEOUT = DISPATCH_BUDGET.visibilityTimeout;
/** AWS's advice for Lambda consumers: a visibility timeout of six times the function timeout. */
export const MAX_CONSUMER_TIMEOUT = Duration.seconds(DISPATCH_VISIBILITY_TIMEOUT.toSeconds() / 6);

/** The dispatcher's environment that carries the arithmetic above (names of lambdas/commons/config.ts and the provider configs). */
export function dispatcherEnvironment(): Record<string, string> {
  const callMs = String(DISPATCH_BUDGET.providerCallTimeout.toMilliseconds());
  return {
    DISPATCH_LEASE_MS: String(DISPATCH_BUDGET.lease.toMilliseconds()),
    DISPATCH_CALL_MARGIN_MS: String(DISPATCH_BUDGET.callMargin.toMilliseconds()),
    APACE_TIMEOUT_MS: callMs,
    ADDON_PAYMENTS_TIMEOUT_MS: callMs,
    PAYPRO_TIMEOUT_MS: callMs,
    OPTTY_TIMEOUT_MS: callMs,
  };
}

/**
 * The doorbell of the outbox (docs/design.md §2.4): the table holds the work, a message only says "look
 * now". A message that fails five receives moves to the DLQ, which raises an alarm; the sweeper
 * still finds its refund through the `due` index, so nothing is lost while it waits there.
 */
export class DispatchQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: DISPATCH_VISIBILITY_TIMEOUT,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: DISPATCH_BUDGET.maxReceiveCount },
    });
  }
}

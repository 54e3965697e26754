import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** A dispatcher run may take this long before SQS hands its message to another consumer. */
export const DISPATCH_VISIBILITY_TIMEOUT = Duration.minutes(3);
/** AWS's advice for Lambda consumers: a visibility timeout of six times the function timeout. */
export const MAX_CONSUMER_TIMEOUT = Duration.seconds(DISPATCH_VISIBILITY_TIMEOUT.toSeconds() / 6);

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
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });
  }
}

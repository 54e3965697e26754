import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Doorbell } from './sweeper';

/** The doorbell in AWS: one SQS message per order (the table stays the outbox; SQS only wakes). */
export class SqsDoorbell implements Doorbell {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async ring(orderIds: readonly string[]): Promise<void> {
    const unique = [...new Set(orderIds)];
    for (let i = 0; i < unique.length; i += 10) {
      const batch = unique.slice(i, i + 10);
      const result = await this.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((orderId, index) => ({ Id: String(index), MessageBody: JSON.stringify({ orderId }) })),
        }),
      );
      // A lost doorbell is not a lost refund (the sweeper finds it), but say so.
      if (result.Failed?.length) throw new Error(`SQS refused ${result.Failed.length} doorbell message(s)`);
    }
  }
}

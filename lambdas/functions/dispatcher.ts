import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { withLambdaContext } from '../commons/lambda-context';
import { logger } from '../commons/logger';
import { createDispatcher } from './dispatch-runtime';
import { runtime } from './runtime';

const dispatcher = createDispatcher(runtime());

function orderIdOf(body: string): string | undefined {
  try {
    const { orderId } = JSON.parse(body) as { orderId?: unknown };
    return typeof orderId === 'string' && orderId ? orderId : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SQS consumer of the outbox doorbell. Each message names an order; the table says what is due.
 * A failed order is reported back alone (partial batch failure) so SQS retries only it, and after
 * five receives it lands in the DLQ — its refunds stay due in the table for the sweeper either way.
 */
export const handler = withLambdaContext(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const failures: SQSBatchItemFailure[] = [];
  const byOrder = new Map<string, string[]>();
  for (const record of event.Records) {
    const orderId = orderIdOf(record.body);
    if (!orderId) {
      logger.error('dropping a doorbell message without an order id', { message_id: record.messageId });
      continue;
    }
    byOrder.set(orderId, [...(byOrder.get(orderId) ?? []), record.messageId]);
  }
  await Promise.all(
    [...byOrder].map(async ([orderId, messageIds]) => {
      try {
        const steps = await dispatcher.processOrder(orderId);
        logger.info('order dispatched', { order_id: orderId, steps });
      } catch (error) {
        logger.error('order dispatch failed; SQS will retry', { order_id: orderId, error });
        failures.push(...messageIds.map((itemIdentifier) => ({ itemIdentifier })));
      }
    }),
  );
  return { batchItemFailures: failures };
});

import { SQSClient } from '@aws-sdk/client-sqs';
import { ConfigurationError } from '../commons/config';
import { withLambdaContext } from '../commons/lambda-context';
import { logger } from '../commons/logger';
import { SqsDoorbell } from '../services/sqs-doorbell';
import { sweep } from '../services/sweeper';
import { runtime } from './runtime';

const { store, config } = runtime();
if (!config.DISPATCH_QUEUE_URL) throw new ConfigurationError('DISPATCH_QUEUE_URL is not set: the sweeper has no queue to wake the dispatcher with');
const doorbell = new SqsDoorbell(new SQSClient({}), config.DISPATCH_QUEUE_URL);

/** Scheduled every minute: rings the dispatcher for every order whose work is due (docs/design.md §2.4). */
export const handler = withLambdaContext(async (): Promise<{ due: number }> => {
  const due = await sweep(store, doorbell, Date.now());
  logger.info('swept the outbox', { due: due.length });
  return { due: due.length };
});

import { SQSClient } from '@aws-sdk/client-sqs';
import { ConfigurationError } from '../commons/config';
import { withLambdaContext } from '../commons/lambda-context';
import { logger } from '../commons/logger';
import { SqsDoorbell } from '../services/sqs-doorbell';
import { replayInbox, sweep, type InboxReplayResult } from '../services/sweeper';
import { createInboxReplay } from './dispatch-runtime';
import { runtime } from './runtime';

const rt = runtime();
const { store, config } = rt;
const inbox = createInboxReplay(rt);
if (!config.DISPATCH_QUEUE_URL) throw new ConfigurationError('DISPATCH_QUEUE_URL is not set: the sweeper has no queue to wake the dispatcher with');
const doorbell = new SqsDoorbell(new SQSClient({}), config.DISPATCH_QUEUE_URL);

/**
 * Scheduled every minute: applies or checks the inbox records still pending, then rings the
 * dispatcher for every order whose work is due (docs/design.md §2.4, §2.5).
 */
export const handler = withLambdaContext(async (): Promise<{ due: number; inbox: InboxReplayResult }> => {
  const replayed = await replayInbox(inbox, Date.now());
  const due = await sweep(store, doorbell, Date.now());
  logger.info('swept the inbox and the outbox', { due: due.length, inbox: replayed });
  return { due: due.length, inbox: replayed };
});

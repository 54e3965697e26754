import type { Context } from 'aws-lambda';
import { ConfigurationError } from '../commons/config';
import { lambdaDeadline, withDeadline } from '../commons/deadline';
import { withLambdaContext } from '../commons/lambda-context';
import { logger } from '../commons/logger';
import { replayInbox, sweep, type InboxReplayResult } from '../services/sweeper';
import { createInboxReplay } from './dispatch-runtime';
import { dispatchDoorbell } from './doorbell';
import { runtime } from './runtime';

const rt = runtime();
const { store } = rt;
const inboxDeps = createInboxReplay(rt);
const doorbell = dispatchDoorbell(rt);
if (!doorbell) throw new ConfigurationError('DISPATCH_QUEUE_URL is not set: the sweeper has no queue to wake the dispatcher with');

/** Kept back from the invocation's timeout to report and log the outcome. */
const REPORT_RESERVE_MS = 1_000;

/**
 * Scheduled every minute: rings the dispatcher for every order whose work is due (docs/design.md §2.4),
 * then applies or checks the inbox records still pending (§2.5) within the invocation's deadline,
 * and rings again for the work that created. The outbox comes first: an Apace outage slowing the
 * inbox checks cannot hold up the rest.
 */
export const handler = withLambdaContext(async (_event: unknown, context: Context): Promise<{ due: number; inbox: InboxReplayResult }> =>
  withDeadline(lambdaDeadline(context, REPORT_RESERVE_MS), async () => {
    const due = await sweep(store, doorbell, Date.now());
    const inbox = await replayInbox(inboxDeps, Date.now());
    const more = inbox.replayed + inbox.checked > 0 ? await sweep(store, doorbell, Date.now()) : [];
    logger.info('swept the outbox and the inbox', { due: due.length + more.length, inbox });
    return { due: due.length + more.length, inbox };
  }),
);

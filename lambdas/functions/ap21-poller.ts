import { withLambdaContext } from '../commons/lambda-context';
import type { PollRun } from '../services/ap21-poller';
import { createAp21Poller } from './ap21-runtime';
import { dispatchDoorbell } from './doorbell';
import { runtime } from './runtime';

const rt = runtime();
const poller = createAp21Poller(rt, process.env, dispatchDoorbell(rt));

/**
 * Scheduled every minute: ingests the returns of the Ap21 orders changed since the watermark and
 * retries pushed returns left pending (docs/design.md §2.4). A run is bounded; the next one resumes.
 */
export const handler = withLambdaContext(async (): Promise<PollRun> => poller.run());

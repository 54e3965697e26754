import { ConfigurationError } from '../commons/config';
import { httpHandler, jsonBody } from '../commons/http';
import { lazy } from '../commons/lazy';
import { parseOrReject } from '../commons/validation';
import { opttyInbound } from '../providers/optty/inbound';
import { optty as opttyModule } from '../providers/optty/provider';
import { opttyNotificationSchema } from '../providers/optty/schemas';
import { recordOpttyNotification } from '../services/optty-notifications';
import { inboundCheck } from './inbound-check';
import { reversalConnector } from './reversal-connector';
import { runtime } from './runtime';

const rt = runtime();
const { store, claimWindowMs, config } = rt;
const caller = inboundCheck(rt, opttyInbound);
// The connector the dispatcher uses (OPTTY_API_URL, OPTTY_AUTH_URL), built on the first callback that needs it.
const optty = lazy(() => {
  const connector = reversalConnector(rt, opttyModule);
  if (!connector) throw new ConfigurationError('OPTTY_API_URL is not set: an Optty notification cannot be checked with Optty');
  return connector;
});

/** POST /providers/optty/notifications?token= → 200 once stored; a refund callback is re-checked with Optty. */
export const handler = httpHandler({ name: 'optty.notification', maxBodyBytes: 16 * 1024 }, async (request) => {
  await caller.verify(request);
  const { raw, value } = jsonBody(request);
  const notification = parseOrReject(opttyNotificationSchema, value, 'Optty notification');
  await recordOpttyNotification(store, notification, raw, optty, { now: request.receivedAt, claimWindowMs, leaseMs: config.DISPATCH_LEASE_MS });
  return { status: 200, body: { received: true } };
});

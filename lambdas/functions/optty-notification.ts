import { httpHandler, jsonBody } from '../commons/http';
import { lazy } from '../commons/lazy';
import { parseOrReject } from '../commons/validation';
import { OpttyConnector } from '../providers/optty/client';
import { loadOpttyConfig } from '../providers/optty/config';
import { opttyInbound } from '../providers/optty/inbound';
import { opttyNotificationSchema } from '../providers/optty/schemas';
import { recordOpttyNotification } from '../services/optty-notifications';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const { store, claimWindowMs, config } = rt;
const caller = inboundCheck(rt, opttyInbound);
const optty = lazy(() => new OpttyConnector(caller.secret, loadOpttyConfig()));

/** POST /providers/optty/notifications?token= → 200 once stored; a refund callback is re-checked with Optty. */
export const handler = httpHandler({ name: 'optty.notification', maxBodyBytes: 16 * 1024 }, async (request) => {
  await caller.verify(request);
  const { raw, value } = jsonBody(request);
  const notification = parseOrReject(opttyNotificationSchema, value, 'Optty notification');
  await recordOpttyNotification(store, notification, raw, optty, { now: request.receivedAt, claimWindowMs, leaseMs: config.DISPATCH_LEASE_MS });
  return { status: 200, body: { received: true } };
});

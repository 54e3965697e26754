import { httpHandler, jsonBody, queryParam } from '../commons/http';
import { lazy } from '../commons/lazy';
import { parseOrReject } from '../commons/validation';
import { OpttyConnector } from '../providers/optty/client';
import { loadOpttyConfig } from '../providers/optty/config';
import { authenticateOpttyNotification } from '../providers/optty/notification-token';
import { opttyNotificationSchema, opttySecretSchema } from '../providers/optty/schemas';
import { recordOpttyNotification } from '../services/optty-notifications';
import { runtime } from './runtime';

const { store, secret, claimWindowMs, config } = runtime();
const opttySecret = secret('optty', opttySecretSchema);
const optty = lazy(() => new OpttyConnector(opttySecret, loadOpttyConfig()));

/** POST /providers/optty/notifications?token= → 200 once stored; a refund callback is re-checked with Optty. */
export const handler = httpHandler({ name: 'optty.notification', maxBodyBytes: 16 * 1024 }, async (request) => {
  await authenticateOpttyNotification(opttySecret, queryParam(request, 'token'));
  const { raw, value } = jsonBody(request);
  const notification = parseOrReject(opttyNotificationSchema, value, 'Optty notification');
  await recordOpttyNotification(store, notification, raw, optty, { now: request.receivedAt, claimWindowMs, leaseMs: config.DISPATCH_LEASE_MS });
  return { status: 200, body: { received: true } };
});

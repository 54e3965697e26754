import { httpHandler, jsonBody, queryParam } from '../commons/http';
import { parseOrReject } from '../commons/validation';
import { authenticateCallback } from '../providers/apace/callback-token';
import { apaceNotificationSchema, apaceSecretSchema } from '../providers/apace/schemas';
import { APACE_SIGNATURE_HEADER, verifyApaceSignature } from '../providers/apace/signature';
import { applyApaceNotification } from '../services/apace-callbacks';
import { refundIdsFrom } from './callback-path';
import { runtime } from './runtime';

const { store, secret, claimWindowMs, apaceProcessedWithinMs } = runtime();
const apaceSecret = secret('apace', apaceSecretSchema);

/** POST /apace/orders/{orderId}/refunds/{refundId}/notification?auth_token= → {received: true} */
export const handler = httpHandler({ name: 'apace.notification', maxBodyBytes: 32 * 1024 }, async (request) => {
  const ids = refundIdsFrom(request);
  const now = Date.now();
  await authenticateCallback(apaceSecret, queryParam(request, 'auth_token'), 'notify', ids.orderId, ids.refundId, now);
  const { raw, value } = jsonBody(request);
  await verifyApaceSignature(apaceSecret, request.headers[APACE_SIGNATURE_HEADER], request.body);
  const notification = parseOrReject(apaceNotificationSchema, value, 'notification');
  await applyApaceNotification(store, ids, notification, raw, { now: new Date(now).toISOString(), claimWindowMs, apaceProcessedWithinMs });
  return { status: 200, body: { received: true } };
});

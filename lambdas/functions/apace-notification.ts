import { httpHandler, jsonBody } from '../commons/http';
import { parseOrReject } from '../commons/validation';
import { apaceInbound } from '../providers/apace/inbound';
import { apaceNotificationSchema } from '../providers/apace/schemas';
import { applyApaceNotification } from '../services/apace-callbacks';
import { refundIdsFrom } from './callback-path';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const { store, claimWindowMs, apaceProcessedWithinMs } = rt;
const apace = inboundCheck(rt, apaceInbound);

/** POST /apace/orders/{orderId}/refunds/{refundId}/notification?auth_token= → {received: true} */
export const handler = httpHandler({ name: 'apace.notification', maxBodyBytes: 32 * 1024 }, async (request) => {
  // The callback token, then Apace's HMAC of the body (providers/apace/inbound.ts).
  await apace.verify(request);
  const { raw, value } = jsonBody(request);
  const notification = parseOrReject(apaceNotificationSchema, value, 'notification');
  await applyApaceNotification(store, refundIdsFrom(request), notification, raw, { now: request.receivedAt, claimWindowMs, apaceProcessedWithinMs });
  return { status: 200, body: { received: true } };
});

import { httpHandler, queryParam } from '../commons/http';
import { authenticateCallback } from '../providers/apace/callback-token';
import { apaceSecretSchema, verificationAnswer } from '../providers/apace/schemas';
import { decideVerification } from '../services/apace-callbacks';
import { refundIdsFrom } from './callback-path';
import { runtime } from './runtime';

const { store, secret } = runtime();
const apaceSecret = secret('apace', apaceSecretSchema);

/** GET /apace/orders/{orderId}/refunds/{refundId}/verification?auth_token= → {allow_refund, refund_issued?} */
export const handler = httpHandler({ name: 'apace.verification', maxBodyBytes: 0 }, async (request) => {
  const ids = refundIdsFrom(request);
  const now = Date.now();
  await authenticateCallback(apaceSecret, queryParam(request, 'auth_token'), 'verify', ids.orderId, ids.refundId, now);
  return { status: 200, body: verificationAnswer(await decideVerification(store, ids, new Date(now).toISOString())) };
});

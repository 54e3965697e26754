import { httpHandler } from '../commons/http';
import { apaceInbound } from '../providers/apace/inbound';
import { verificationAnswer } from '../providers/apace/schemas';
import { decideVerification } from '../services/apace-callbacks';
import { refundIdsFrom } from './callback-path';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const apace = inboundCheck(rt, apaceInbound);

/** GET /apace/orders/{orderId}/refunds/{refundId}/verification?auth_token= → {allow_refund, refund_issued?} */
export const handler = httpHandler({ name: 'apace.verification', maxBodyBytes: 0 }, async (request) => {
  await apace.verify(request);
  return { status: 200, body: verificationAnswer(await decideVerification(rt.store, refundIdsFrom(request), request.receivedAt)) };
});

import { httpHandler, jsonBody } from '../commons/http';
import { lazy } from '../commons/lazy';
import { sourceIpMatcher } from '../commons/source-ip';
import { parseOrReject } from '../commons/validation';
import { authenticateRefundid } from '../providers/refundid/auth';
import { loadRefundidConfig } from '../providers/refundid/config';
import { refundidSecretSchema, rmaPushSchema } from '../providers/refundid/schemas';
import { loadExchangePolicy } from '../services/exchange-policy';
import { applyRmaPush } from '../services/refundid-rma';
import { runtime } from './runtime';

const { store, secret, claimWindowMs } = runtime();
const refundidSecret = secret('refundid', refundidSecretSchema);
const isRefundid = lazy(() => sourceIpMatcher(loadRefundidConfig().allowedIps));
const exchangePolicy = lazy(() => loadExchangePolicy());

/** POST /refundid/refund (RMA status push: refunding, refundid, failed) → {received, refund_id, state}; 409 when units are taken. */
export const handler = httpHandler({ name: 'refundid.refund', maxBodyBytes: 64 * 1024 }, async (request) => {
  await authenticateRefundid(refundidSecret, isRefundid(), request);
  const { raw, value } = jsonBody(request);
  const push = parseOrReject(rmaPushSchema, value, 'RMA push');
  return { status: 200, body: await applyRmaPush(store, push, raw, { now: request.receivedAt, claimWindowMs }, exchangePolicy()) };
});

import { httpHandler, jsonBody } from '../commons/http';
import { lazy } from '../commons/lazy';
import { refundidInbound } from '../providers/refundid/inbound';
import { loadExchangePolicy } from '../services/exchange-policy';
import { applyRmaPush, readRmaPush } from '../services/refundid-rma';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const { store, claimWindowMs } = rt;
const refundid = inboundCheck(rt, refundidInbound);
const exchangePolicy = lazy(() => loadExchangePolicy());

/** POST /refundid/refund (RMA status push: refunding, refundid, failed) → {received, refund_id, state}; 409 when units are taken. */
export const handler = httpHandler({ name: 'refundid.refund', maxBodyBytes: 64 * 1024 }, async (request) => {
  await refundid.verify(request);
  const { raw, value } = jsonBody(request);
  const push = await readRmaPush(store, value, raw, request.receivedAt);
  return { status: 200, body: await applyRmaPush(store, push, raw, { now: request.receivedAt, claimWindowMs }, exchangePolicy()) };
});

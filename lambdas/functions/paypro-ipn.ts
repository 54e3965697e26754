import { httpHandler } from '../commons/http';
import { parsePayProIpn } from '../providers/paypro/ipn';
import { payProInbound } from '../providers/paypro/inbound';
import { recordPayProIpn } from '../services/paypro-ipn';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const { store, claimWindowMs } = rt;
const payPro = inboundCheck(rt, payProInbound);

/** POST /providers/paypro/ipn (form-encoded, one per product) → 200 once stored; PayPro retries anything else. */
export const handler = httpHandler({ name: 'paypro.ipn', maxBodyBytes: 32 * 1024 }, async (request) => {
  // Source address, form, test mode, HASH and SIGNATURE (providers/paypro/inbound.ts).
  await payPro.verify(request);
  const raw = request.body.toString('utf8');
  await recordPayProIpn(store, parsePayProIpn(raw), raw, { now: request.receivedAt, claimWindowMs });
  return { status: 200, body: { received: true } };
});

import { ForbiddenError } from '../commons/errors';
import { httpHandler, textBody } from '../commons/http';
import { MEDIA_TYPES } from '../commons/media-types';
import { lazy } from '../commons/lazy';
import { loadPayProIpnConfig } from '../providers/paypro/config';
import { sourceIpMatcher } from '../commons/source-ip';
import { parsePayProIpn, verifyPayProIpn } from '../providers/paypro/ipn';
import { payProSecretSchema } from '../providers/paypro/schemas';
import { recordPayProIpn } from '../services/paypro-ipn';
import { runtime } from './runtime';

const { store, secret, claimWindowMs } = runtime();
const payProSecret = secret('paypro', payProSecretSchema);
const settings = lazy(() => {
  const config = loadPayProIpnConfig();
  return { config, isPayPro: sourceIpMatcher(config.sourceIps) };
});

/** POST /providers/paypro/ipn (form-encoded, one per product) → 200 once stored; PayPro retries anything else. */
export const handler = httpHandler({ name: 'paypro.ipn', maxBodyBytes: 32 * 1024 }, async (request) => {
  const { config, isPayPro } = settings();
  // Before the body is read: a stranger learns nothing about what we would accept.
  if (!isPayPro(request.sourceIp)) throw new ForbiddenError("IPN source address is not one of PayPro's", 'forbidden_source');
  const raw = textBody(request, MEDIA_TYPES.form);
  const ipn = parsePayProIpn(raw);
  await verifyPayProIpn(payProSecret, config, ipn);
  await recordPayProIpn(store, ipn, raw, { now: request.receivedAt, claimWindowMs });
  return { status: 200, body: { received: true } };
});

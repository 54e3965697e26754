import { ForbiddenError, UnauthorizedError } from '../../commons/http-errors';
import { textBody } from '../../commons/http';
import { MEDIA_TYPES } from '../../commons/media-types';
import { sourceIpMatcher } from '../../commons/source-ip';
import type { InboundVerifier } from '../provider-module';
import { loadPayProIpnConfig, type PayProIpnConfig } from './config';
import { checkIpn, parsePayProIpn, type IpnCheck } from './ipn';
import { payProSecretSchema, type PayProSecret } from './schemas';

/**
 * PayPro's IPNs (docs/providers.md §5): the source address first, before the body is read, so a
 * stranger learns nothing about what we would accept (403); then the form (415, 400), test mode
 * (403), and HASH and SIGNATURE (401; retried once with a re-read secret, the keys may have rotated).
 */
export const payProInbound: InboundVerifier<PayProSecret, PayProIpnConfig & { isPayPro: (sourceIp: string) => boolean }> = {
  provider: 'paypro',
  secretSchema: payProSecretSchema,
  loadSettings: (env) => {
    const config = loadPayProIpnConfig(env);
    return { ...config, isPayPro: sourceIpMatcher(config.sourceIps) };
  },
  async verify(request, secrets, settings) {
    if (!settings.isPayPro(request.sourceIp)) throw new ForbiddenError("IPN source address is not one of PayPro's", 'forbidden_source');
    const ipn = parsePayProIpn(textBody(request, MEDIA_TYPES.form));
    if (ipn.TEST_MODE === '1' && !settings.allowTestMode) throw new ForbiddenError('test-mode IPNs are not accepted here', 'test_mode');
    let last: IpnCheck = 'bad_hash';
    const valid = await secrets.verifyWithRotation((secret) => (last = checkIpn(ipn, secret, settings.allowTestMode)) === 'valid');
    if (valid) return;
    if (last === 'bad_hash') throw new UnauthorizedError('IPN HASH does not match', 'invalid_hash');
    throw new UnauthorizedError('IPN SIGNATURE does not match', 'invalid_signature');
  },
};

import { sameSecret } from '../../commons/constant-time';
import { ForbiddenError, UnauthorizedError } from '../../commons/http-errors';
import { sourceIpMatcher } from '../../commons/source-ip';
import type { InboundVerifier } from '../provider-module';
import { loadRefundidConfig } from './config';
import { refundidSecretSchema, type RefundidSecret } from './schemas';

const BEARER = /^Bearer +([\x21-\x7E]{1,1024})$/i;

/**
 * The two layers Refundid's calls pass (docs/providers.md §2; its optional TLS client certificate is not
 * used): the source address (403, `REFUNDID_ALLOWED_IPS`) and `Authorization: Bearer <bearerToken>`
 * (401). A token that does not match re-reads the secret once, so a rotated token is accepted without a redeploy.
 */
export const refundidInbound: InboundVerifier<RefundidSecret, { isRefundid: (sourceIp: string) => boolean }> = {
  provider: 'refundid',
  secretSchema: refundidSecretSchema,
  loadSettings: (env) => ({ isRefundid: sourceIpMatcher(loadRefundidConfig(env).allowedIps) }),
  async verify(request, secrets, { isRefundid }) {
    if (!isRefundid(request.sourceIp)) throw new ForbiddenError("source address is not one of Refundid's", 'forbidden_source');
    const header = request.headers.authorization;
    if (!header) throw new UnauthorizedError('Authorization header is missing', 'missing_token');
    const token = BEARER.exec(header.trim())?.[1];
    if (!token) throw new UnauthorizedError('Authorization must be "Bearer <token>"', 'invalid_token');
    const valid = await secrets.verifyWithRotation((secret) => sameSecret(token, secret.bearerToken));
    if (!valid) throw new UnauthorizedError('bearer token is not valid', 'invalid_token');
  },
};

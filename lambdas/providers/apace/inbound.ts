import { UnauthorizedError } from '../../commons/http-errors';
import { queryParam } from '../../commons/http';
import { refundIdsFrom } from '../../functions/callback-path';
import type { InboundVerifier } from '../provider-module';
import { readCallbackToken, type CallbackPurpose } from './callback-token';
import { apaceSecretSchema, type ApaceSecret } from './schemas';
import { APACE_SIGNATURE_HEADER, signatureBytes, signatureMatches } from './signature';

/**
 * Apace calls the two URLs we handed it for one refund with no auth headers of its own
 * (docs/design.md §3): each carries our token (`auth_token`), for its purpose, order and refund, and
 * the webhook also carries Apace's HMAC of the body, keyed by our API secret. A GET is the
 * verification, a POST the webhook. The path ids are checked first (400), then the token, then the
 * body's signature (401); an unknown key id or a bad MAC re-reads the secret once (it may have rotated).
 */
export const apaceInbound: InboundVerifier<ApaceSecret, void> = {
  provider: 'apace',
  secretSchema: apaceSecretSchema,
  loadSettings: () => undefined,
  async verify(request, secrets) {
    const { orderId, refundId } = refundIdsFrom(request);
    const purpose: CallbackPurpose = request.method === 'GET' ? 'verify' : 'notify';
    const token = readCallbackToken(queryParam(request, 'auth_token'), Date.now());
    if ('problem' in token) {
      if (token.problem === 'missing') throw new UnauthorizedError('auth_token is missing', 'missing_token');
      if (token.problem === 'malformed') throw new UnauthorizedError('auth_token is malformed', 'invalid_token');
      throw new UnauthorizedError('auth_token has expired', 'expired_token');
    }
    if (!(await secrets.verifyWithRotation((secret) => token.matches(secret, purpose, orderId, refundId))))
      throw new UnauthorizedError('auth_token is not valid for this refund', 'invalid_token');
    if (purpose === 'verify') return;

    const header = request.headers[APACE_SIGNATURE_HEADER];
    if (!header) throw new UnauthorizedError(`${APACE_SIGNATURE_HEADER} header is missing`, 'missing_signature');
    const given = signatureBytes(header);
    if (!given) throw new UnauthorizedError(`${APACE_SIGNATURE_HEADER} is not a hex SHA-256 HMAC`, 'invalid_signature');
    if (!(await secrets.verifyWithRotation((secret) => signatureMatches(secret.apiSecret, given, request.body))))
      throw new UnauthorizedError('signature does not match the request body', 'invalid_signature');
  },
};

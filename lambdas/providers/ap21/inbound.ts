import { parseEnvironment } from '../../commons/config';
import { sameSecret } from '../../commons/constant-time';
import { ForbiddenError, ServiceUnavailableError, UnauthorizedError } from '../../commons/http-errors';
import { allowlistSetting, sourceIpMatcher } from '../../commons/source-ip';
import * as z from 'zod/mini';
import type { InboundVerifier } from '../provider-module';
import { ap21SecretSchema, type Ap21Secret } from './schemas';

/** HTTP Basic user name of the push (its password is `pushApiKey` of the `ap21` secret). */
const PUSH_BASIC_USER = 'ap21';
/** The alternative to Basic auth: the same key in this header. */
const PUSH_API_KEY_HEADER = 'x-api-key';

const BASIC = /^Basic ([A-Za-z0-9+/]{1,1024}={0,2})$/i;

/** The key a push presents: exactly one of Basic (user `ap21`) or the API-key header. */
function presentedKey(headers: Readonly<Record<string, string>>): string | undefined {
  const apiKey = headers[PUSH_API_KEY_HEADER];
  const authorization = headers.authorization;
  if (apiKey !== undefined && authorization !== undefined) return undefined;
  if (apiKey !== undefined) return apiKey;
  const basic = BASIC.exec(authorization ?? '');
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 && decoded.slice(0, colon) === PUSH_BASIC_USER ? decoded.slice(colon + 1) : undefined;
}

const settingsSchema = z.object({
  /** Addresses (or CIDR blocks) allowed to push returns, comma-separated; empty refuses everyone. The stack fills it from `ipAllowlists['/ap21/returns']`. */
  AP21_PUSH_ALLOWED_IPS: z._default(z.string(), ''),
});

/**
 * Pushes of `POST /ap21/returns` from the retailer's Ap21-side integration (Ap21 has no webhooks of
 * its own): the source address first (403), then the push key (401), as HTTP Basic (user `ap21`) or
 * an `x-api-key` header, never both; a mismatch re-reads the secret once (it may have rotated). A
 * stage whose secret has no `pushApiKey` takes no pushes (503, `not_configured`).
 */
export const ap21Inbound: InboundVerifier<Ap21Secret, { isAllowedSource: (sourceIp: string) => boolean }> = {
  provider: 'ap21',
  secretSchema: ap21SecretSchema,
  loadSettings(env) {
    const { AP21_PUSH_ALLOWED_IPS } = parseEnvironment(settingsSchema, env, 'Ap21 push ');
    return { isAllowedSource: sourceIpMatcher(allowlistSetting('AP21_PUSH_ALLOWED_IPS', AP21_PUSH_ALLOWED_IPS, 'Ap21 push ')) };
  },
  async verify(request, secrets, { isAllowedSource }) {
    if (!isAllowedSource(request.sourceIp)) throw new ForbiddenError('this address may not push returns', 'forbidden_source');
    const key = presentedKey(request.headers);
    if (key === undefined)
      throw new UnauthorizedError(
        `send exactly one of HTTP Basic credentials (user ${PUSH_BASIC_USER}) or an ${PUSH_API_KEY_HEADER} header`,
        'missing_credentials',
      );
    if ((await secrets.get()).pushApiKey === undefined)
      throw new ServiceUnavailableError('pushes are not configured on this stage (ap21 secret has no pushApiKey)', 'not_configured');
    const valid = await secrets.verifyWithRotation((secret) => secret.pushApiKey !== undefined && sameSecret(key, secret.pushApiKey));
    if (!valid) throw new UnauthorizedError('push credentials do not match', 'invalid_credentials');
  },
};

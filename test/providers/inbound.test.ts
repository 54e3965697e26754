import type { HttpRequest } from '../../lambdas/commons/http';
import { addonPaymentsInbound } from '../../lambdas/providers/addon-payments/inbound';
import { ap21Inbound } from '../../lambdas/providers/ap21/inbound';
import type { Ap21Secret } from '../../lambdas/providers/ap21/schemas';
import { callbackUrls } from '../../lambdas/providers/apace/callback-token';
import { apaceInbound } from '../../lambdas/providers/apace/inbound';
import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import { APACE_SIGNATURE_HEADER, signApaceBody } from '../../lambdas/providers/apace/signature';
import { opttyInbound } from '../../lambdas/providers/optty/inbound';
import type { OpttySecret } from '../../lambdas/providers/optty/schemas';
import { payProInbound } from '../../lambdas/providers/paypro/inbound';
import type { PayProIpn } from '../../lambdas/providers/paypro/ipn';
import type { PayProSecret } from '../../lambdas/providers/paypro/schemas';
import type { InboundVerifier } from '../../lambdas/providers/provider-module';
import { refundidInbound } from '../../lambdas/providers/refundid/inbound';
import type { RefundidSecret } from '../../lambdas/providers/refundid/schemas';
import { secretNameOf } from '../../lambdas/providers/registry';
import { inboundRequest, signedPayProIpn } from '../support/inbound';
import { secretReader } from '../support/memory-secrets';

/**
 * Every provider's inbound check, through the one shape they share (lambdas/providers/provider-module.ts):
 * a genuine call passes, each forgery is refused with its status and code, and a credential that
 * no longer matches is tried once more against a re-read secret (a rotation), never more.
 */

interface Case<Secret> {
  readonly verifier: InboundVerifier<Secret, unknown>;
  readonly secret: Secret;
  readonly env: NodeJS.ProcessEnv;
  /** A genuine request, made with `secret`. */
  readonly genuine: (secret: Secret) => HttpRequest;
  readonly forgeries: readonly (readonly [string, (secret: Secret) => HttpRequest, number, string])[];
  /** The secret after a rotation (absent: the provider signs nothing). */
  readonly rotated?: Secret;
}

const apaceSecret: ApaceSecret = { publicId: 'pub', apiSecret: 'apace-api-secret', callbackKeys: { k1: 'k'.repeat(32) }, callbackKeyId: 'k1' };
const ids = { orderId: 'ap21-1', refundId: 'ap21-r1' };
function apaceCall(secret: ApaceSecret, method: 'GET' | 'POST', body = '{"status":"processed"}', expiresAtMs = Date.now() + 60_000): HttpRequest {
  const urls = callbackUrls('https://relay.example', secret, ids.orderId, ids.refundId, expiresAtMs);
  const url = new URL(method === 'GET' ? urls.verificationUrl : urls.notificationUrl);
  return inboundRequest({
    method,
    pathParameters: ids,
    query: { auth_token: [url.searchParams.get('auth_token')!] },
    ...(method === 'POST' && { body, headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signApaceBody(secret.apiSecret, body) } }),
  });
}
const withQuery = (request: HttpRequest, query: HttpRequest['query']): HttpRequest => ({ ...request, query });
const withHeaders = (request: HttpRequest, headers: Record<string, string>): HttpRequest => ({ ...request, headers: { ...request.headers, ...headers } });

const opttySecret: OpttySecret = { clientId: 'c', clientSecret: 's', merchantId: 'm', notificationSecret: 'optty-notification-secret-1' };
const opttyCall = (secret: OpttySecret) => inboundRequest({ query: { token: [secret.notificationSecret!] }, body: '{}' });

const refundidSecret: RefundidSecret = { bearerToken: 'r'.repeat(40) };
const refundidCall = (secret: RefundidSecret, sourceIp = '127.0.0.1') =>
  inboundRequest({ method: 'GET', sourceIp, headers: { authorization: `Bearer ${secret.bearerToken}` } });

const payProSecret: PayProSecret = { vendorAccountId: 42, apiSecretKey: 'api', ipnSecretKey: 'ipn-secret-key', ipnValidationKey: '123qwerty' };
function payProCall(secret: PayProSecret, overrides: Partial<PayProIpn> = {}, sourceIp = '127.0.0.1'): HttpRequest {
  const form = new URLSearchParams(signedPayProIpn(secret, overrides)).toString();
  return inboundRequest({ sourceIp, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
}

const ap21Secret: Ap21Secret = { username: 'u', password: 'p', pushApiKey: 'ap21-push-key-0123456789' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ap21Push = (secret: Ap21Secret, sourceIp = '127.0.0.1') =>
  inboundRequest({ sourceIp, headers: { authorization: basic('ap21', secret.pushApiKey!), 'content-type': 'application/xml' }, body: '<ReturnOrder/>' });

const CASES = {
  ap21: {
    verifier: ap21Inbound,
    secret: ap21Secret,
    env: { AP21_PUSH_ALLOWED_IPS: '127.0.0.1' },
    genuine: (secret) => ap21Push(secret),
    forgeries: [
      ['a stranger address', (secret) => ap21Push(secret, '203.0.113.9'), 403, 'forbidden_source'],
      ['no credentials', (secret) => ({ ...ap21Push(secret), headers: {} }), 401, 'missing_credentials'],
      ['both Basic and x-api-key', (secret) => withHeaders(ap21Push(secret), { 'x-api-key': secret.pushApiKey! }), 401, 'missing_credentials'],
      ['another Basic user', (secret) => withHeaders(ap21Push(secret), { authorization: basic('admin', secret.pushApiKey!) }), 401, 'missing_credentials'],
      ['another key', (secret) => withHeaders(ap21Push(secret), { authorization: basic('ap21', 'x'.repeat(24)) }), 401, 'invalid_credentials'],
    ],
    rotated: { ...ap21Secret, pushApiKey: 'ap21-push-key-rotated-000' },
  } satisfies Case<Ap21Secret>,
  'apace verification': {
    verifier: apaceInbound,
    secret: apaceSecret,
    env: {},
    genuine: (secret) => apaceCall(secret, 'GET'),
    forgeries: [
      ['no token', (secret) => withQuery(apaceCall(secret, 'GET'), {}), 401, 'missing_token'],
      ['a malformed token', (secret) => withQuery(apaceCall(secret, 'GET'), { auth_token: ['x.y.z'] }), 401, 'invalid_token'],
      ['an expired token', (secret) => apaceCall(secret, 'GET', undefined, Date.now() - 1_000), 401, 'expired_token'],
      ['the webhook token on the verification URL', (secret) => ({ ...apaceCall(secret, 'POST'), method: 'GET' }), 401, 'invalid_token'],
      ['a token for another refund', (secret) => ({ ...apaceCall(secret, 'GET'), pathParameters: { ...ids, refundId: 'ap21-r2' } }), 401, 'invalid_token'],
      ['a malformed path id', (secret) => ({ ...apaceCall(secret, 'GET'), pathParameters: { ...ids, refundId: '../x' } }), 400, 'invalid_path'],
    ],
    rotated: { ...apaceSecret, callbackKeys: { k2: 'n'.repeat(32) }, callbackKeyId: 'k2' },
  } satisfies Case<ApaceSecret>,
  'apace webhook': {
    verifier: apaceInbound,
    secret: apaceSecret,
    env: {},
    genuine: (secret) => apaceCall(secret, 'POST'),
    forgeries: [
      ['no signature', (secret) => withHeaders(apaceCall(secret, 'POST'), { [APACE_SIGNATURE_HEADER]: '' }), 401, 'missing_signature'],
      [
        'a signature that is not hex SHA-256',
        (secret) => withHeaders(apaceCall(secret, 'POST'), { [APACE_SIGNATURE_HEADER]: 'abc' }),
        401,
        'invalid_signature',
      ],
      ['a body changed after signing', (secret) => ({ ...apaceCall(secret, 'POST'), body: Buffer.from('{"status":"failed"}') }), 401, 'invalid_signature'],
      ['the verification token on the webhook', (secret) => ({ ...apaceCall(secret, 'GET'), method: 'POST' }), 401, 'invalid_token'],
    ],
    rotated: { ...apaceSecret, apiSecret: 'rotated-api-secret', callbackKeys: { k2: 'n'.repeat(32) }, callbackKeyId: 'k2' },
  } satisfies Case<ApaceSecret>,
  optty: {
    verifier: opttyInbound,
    secret: opttySecret,
    env: {},
    genuine: opttyCall,
    forgeries: [
      ['no token', (secret) => withQuery(opttyCall(secret), {}), 401, 'missing_token'],
      ['a malformed token', (secret) => withQuery(opttyCall(secret), { token: ['not a token!'] }), 401, 'invalid_token'],
      ['another token', (secret) => withQuery(opttyCall(secret), { token: ['someone-elses-secret-123'] }), 401, 'invalid_token'],
    ],
    rotated: { ...opttySecret, notificationSecret: 'optty-notification-secret-2' },
  } satisfies Case<OpttySecret>,
  refundid: {
    verifier: refundidInbound,
    secret: refundidSecret,
    env: { REFUNDID_ALLOWED_IPS: '127.0.0.1' },
    genuine: (secret) => refundidCall(secret),
    forgeries: [
      ['a stranger address', (secret) => refundidCall(secret, '203.0.113.9'), 403, 'forbidden_source'],
      ['no Authorization', (secret) => ({ ...refundidCall(secret), headers: {} }), 401, 'missing_token'],
      ['Basic instead of Bearer', (secret) => withHeaders(refundidCall(secret), { authorization: 'Basic abc' }), 401, 'invalid_token'],
      ['another bearer token', (secret) => withHeaders(refundidCall(secret), { authorization: `Bearer ${'x'.repeat(40)}` }), 401, 'invalid_token'],
    ],
    rotated: { bearerToken: 'n'.repeat(40) },
  } satisfies Case<RefundidSecret>,
  paypro: {
    verifier: payProInbound,
    secret: payProSecret,
    env: { PAYPRO_IPN_SOURCE_IPS: '127.0.0.1' },
    genuine: (secret) => payProCall(secret),
    forgeries: [
      ['a stranger address', (secret) => payProCall(secret, {}, '203.0.113.9'), 403, 'forbidden_source'],
      ['a test-mode IPN where test mode is off', (secret) => payProCall(secret, { TEST_MODE: '1' }), 403, 'test_mode'],
      ['a HASH from another secret key', (secret) => payProCall({ ...secret, ipnSecretKey: 'other' }), 401, 'invalid_hash'],
      ['a SIGNATURE from another validation key', (secret) => payProCall({ ...secret, ipnValidationKey: 'other' }), 401, 'invalid_signature'],
      ['JSON instead of a form', (secret) => withHeaders(payProCall(secret), { 'content-type': 'application/json' }), 415, 'unsupported_media_type'],
    ],
    rotated: { ...payProSecret, ipnSecretKey: 'rotated-secret', ipnValidationKey: 'rotated-validation' },
  } satisfies Case<PayProSecret>,
} as const;

describe.each(Object.entries(CASES) as [string, Case<unknown>][])('%s', (_name, { verifier, secret, env, genuine, forgeries, rotated }) => {
  const reader = () => secretReader(secretNameOf(verifier.provider), secret, verifier.secretSchema as never);
  const settings = verifier.loadSettings(env);

  it('passes a genuine call', async () => {
    await expect(verifier.verify(genuine(secret), reader().reader, settings)).resolves.toBeUndefined();
  });

  it.each(forgeries.map(([what, request, status, code]) => ({ what, request, status, code })))(
    'refuses $what ($status $code)',
    async ({ request, status, code }) => {
      await expect(verifier.verify(request(secret), reader().reader, settings)).rejects.toMatchObject({ status, code });
    },
  );

  if (rotated !== undefined)
    it('passes a call made with a rotated secret after re-reading it once', async () => {
      const { source, reader: secrets } = reader();
      await secrets.get();
      source.set(secretNameOf(verifier.provider), rotated);
      await expect(verifier.verify(genuine(rotated), secrets, settings)).resolves.toBeUndefined();
      expect(source.reads.filter((read) => read.forceFetch)).toHaveLength(1);
    });
});

describe('addon_payments', () => {
  it('checks nothing: EPG signs nothing, so its notification is only a hint (docs/design.md §3)', async () => {
    const { reader } = secretReader('addonPayments', { merchantId: '123456', merchantPassword: 'p'.repeat(32) }, addonPaymentsInbound.secretSchema);
    await expect(
      addonPaymentsInbound.verify(inboundRequest({ sourceIp: '203.0.113.9' }), reader, addonPaymentsInbound.loadSettings({})),
    ).resolves.toBeUndefined();
  });
});

describe('ap21 on a stage whose secret has no pushApiKey', () => {
  it('takes no pushes: 503 not_configured, so the integration retries once the key is set', async () => {
    const { pushApiKey: _key, ...withoutKey } = ap21Secret;
    const { reader } = secretReader('ap21', withoutKey, ap21Inbound.secretSchema);
    const settings = ap21Inbound.loadSettings({ AP21_PUSH_ALLOWED_IPS: '127.0.0.1' });
    await expect(ap21Inbound.verify(ap21Push(ap21Secret), reader, settings)).rejects.toMatchObject({ status: 503, code: 'not_configured' });
  });

  it('refuses a push from everyone when AP21_PUSH_ALLOWED_IPS is empty', async () => {
    const { reader } = secretReader('ap21', ap21Secret, ap21Inbound.secretSchema);
    await expect(ap21Inbound.verify(ap21Push(ap21Secret), reader, ap21Inbound.loadSettings({}))).rejects.toMatchObject({ status: 403 });
  });

  it('will not load an AP21_PUSH_ALLOWED_IPS entry that is no address, and names the variable', () => {
    expect(() => ap21Inbound.loadSettings({ AP21_PUSH_ALLOWED_IPS: '127.0.0.1,ap21.example.com' })).toThrow(
      'bad Ap21 push environment: AP21_PUSH_ALLOWED_IPS has not IP addresses or CIDR blocks: ap21.example.com',
    );
  });
});

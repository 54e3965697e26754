import type { HttpRequest } from '../../lambdas/commons/http';
import { ipnHash, ipnSignature, type PayProIpn } from '../../lambdas/providers/paypro/ipn';
import type { PayProSecret } from '../../lambdas/providers/paypro/schemas';

/** An inbound request as the route handlers see it (commons/http.ts), for the providers' `inbound.ts` checks. */
export function inboundRequest(overrides: Partial<Omit<HttpRequest, 'body'>> & { body?: Buffer | string } = {}): HttpRequest {
  const { body = '', headers = {}, ...rest } = overrides;
  return {
    method: 'POST',
    path: '/',
    pathParameters: {},
    query: {},
    sourceIp: '127.0.0.1',
    correlationId: 'test',
    receivedAt: new Date().toISOString(),
    ...rest,
    headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])),
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  };
}

/**
 * PayPro's IPN for the refund of its order 12345 (9.99 USD), HASH and SIGNATURE made with `keys`;
 * `overrides` change fields both before signing and after (so a test can send a field the
 * signature does not cover).
 */
export function signedPayProIpn(keys: Pick<PayProSecret, 'ipnSecretKey' | 'ipnValidationKey'>, overrides: Partial<PayProIpn> = {}): PayProIpn {
  const fields = {
    ORDER_ID: '12345',
    ORDER_STATUS: 'Refunded',
    ORDER_TOTAL_AMOUNT: '9.99',
    ORDER_CURRENCY_CODE: 'USD',
    IPN_TYPE_ID: '2',
    IPN_TYPE_NAME: 'OrderRefunded',
    TEST_MODE: '0' as PayProIpn['TEST_MODE'],
    CUSTOMER_EMAIL: 'alice@example.com',
    ...overrides,
  };
  return { ...fields, HASH: ipnHash(fields.ORDER_ID, keys.ipnSecretKey), SIGNATURE: ipnSignature(fields, keys.ipnValidationKey), ...overrides };
}

import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorResponse } from '../../../lambdas/commons/http';
import { PayProConnector } from '../../../lambdas/providers/paypro/client';
import { loadPayProConnectorConfig } from '../../../lambdas/providers/paypro/config';
import { TEST_ORDER_HASH, checkIpn, ipnHash, ipnSignature, parsePayProIpn, reversalSettlement, type PayProIpn } from '../../../lambdas/providers/paypro/ipn';
import { payProInbound } from '../../../lambdas/providers/paypro/inbound';
import { payProSecretSchema, type PayProSecret } from '../../../lambdas/providers/paypro/schemas';
import { createPayProSimulator } from '../../../simulators/paypro/simulator';
import { startSimulatorHost } from '../../../simulators/kit';
import { inboundRequest, signedPayProIpn } from '../../support/inbound';
import { secretReader } from '../../support/memory-secrets';

const secret: PayProSecret = { vendorAccountId: 42, apiSecretKey: 'api-key', ipnSecretKey: 'ipn-secret-key', ipnValidationKey: '123qwerty' };

const signedIpn = (overrides: Partial<PayProIpn> = {}) => signedPayProIpn(secret, overrides);

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

describe('PayPro IPN signatures', () => {
  it('computes SIGNATURE as the documented example sha256("12345Processed9.99123qwerty1OrderCharged")', () => {
    const documented = createHash('sha256').update('12345Processed9.99123qwerty1OrderCharged').digest('hex');
    const fields = {
      ORDER_ID: '12345',
      ORDER_STATUS: 'Processed',
      ORDER_TOTAL_AMOUNT: '9.99',
      CUSTOMER_EMAIL: '',
      TEST_MODE: '1' as const,
      IPN_TYPE_NAME: 'OrderCharged',
    };
    expect(ipnSignature(fields, '123qwerty')).toBe(documented);
  });

  it('knows the documented test-order HASH MD5("1")', () => {
    expect(TEST_ORDER_HASH).toBe('c4ca4238a0b923820dcc509a6f75849b');
    expect(ipnHash('1', '')).toBe(TEST_ORDER_HASH);
  });

  it('accepts an IPN signed with both keys, in either hex case', () => {
    const ipn = signedIpn();
    expect(checkIpn(ipn, secret, false)).toBe('valid');
    expect(checkIpn({ ...ipn, HASH: ipn.HASH.toUpperCase(), SIGNATURE: ipn.SIGNATURE.toUpperCase() }, secret, false)).toBe('valid');
  });

  it.each<[string, Partial<PayProIpn>, string]>([
    ['a changed amount', { ORDER_TOTAL_AMOUNT: '999.99' }, 'bad_signature'],
    ['a changed status', { ORDER_STATUS: 'Processed' }, 'bad_signature'],
    ['a changed IPN type name', { IPN_TYPE_NAME: 'OrderCharged' }, 'bad_signature'],
    ['a changed order id', { ORDER_ID: '12346' }, 'bad_hash'],
    ['the test-order HASH outside test mode', { HASH: TEST_ORDER_HASH }, 'bad_hash'],
  ])('rejects %s', (_, tampered, expected) => {
    const ipn = { ...signedIpn(), ...tampered };
    expect(checkIpn(ipn, secret, true)).toBe(expected);
  });

  it('accepts the test-order HASH only for TEST_MODE=1 when test mode is allowed, and still demands the SIGNATURE', () => {
    const testIpn = signedIpn({ TEST_MODE: '1', ORDER_TOTAL_AMOUNT: '0' });
    const withTestHash = { ...testIpn, HASH: TEST_ORDER_HASH };
    expect(checkIpn(withTestHash, secret, true)).toBe('valid');
    expect(checkIpn(withTestHash, secret, false)).toBe('bad_hash');
    expect(checkIpn({ ...withTestHash, SIGNATURE: 'a'.repeat(64) }, secret, true)).toBe('bad_signature');
  });
});

describe('PayPro IPN form parsing', () => {
  const valid = () => ({ ...signedIpn(), IS_RESENT: '1', REFUND_ISSUED_BY: 'Vendor', PRODUCT_ID: '77' }) as Record<string, string>;

  it('keeps the fields we use, exactly as sent, and drops the rest', () => {
    const ipn = parsePayProIpn(form(valid()));
    expect(ipn).toMatchObject({ ORDER_ID: '12345', IS_RESENT: '1', REFUND_ISSUED_BY: 'Vendor', CUSTOMER_EMAIL: 'alice@example.com' });
    expect(ipn).not.toHaveProperty('PRODUCT_ID');
    expect(checkIpn(ipn, secret, false)).toBe('valid');
  });

  it.each<[string, () => string, number, RegExp]>([
    ['a repeated field', () => `${form(valid())}&ORDER_ID=1`, 400, /ORDER_ID is repeated/],
    ['a missing HASH', () => form({ ...valid(), HASH: '' }), 422, /HASH/],
    ['a non-hex SIGNATURE', () => form({ ...valid(), SIGNATURE: 'z'.repeat(64) }), 422, /SIGNATURE/],
    ['a non-numeric order id', () => form({ ...valid(), ORDER_ID: '12a' }), 422, /ORDER_ID/],
    ['a TEST_MODE other than 0 or 1', () => form({ ...valid(), TEST_MODE: 'yes' }), 422, /TEST_MODE/],
  ])('refuses %s', (_, body, status, message) => {
    let thrown: unknown;
    try {
      parsePayProIpn(body());
    } catch (error) {
      thrown = error;
    }
    expect(errorResponse(thrown)).toMatchObject({ status, body: { error: { message: expect.stringMatching(message) } } });
  });

  it.each([
    ['2', 'full'],
    ['5', 'partial'],
    ['1', undefined],
    ['3', undefined],
    ['14', undefined],
  ])('IPN type %s settles a reversal: %p', (type, settlement) => {
    expect(reversalSettlement({ IPN_TYPE_ID: type })).toBe(settlement);
  });
});

describe('PayPro simulator IPN after a refund', () => {
  let receiver: Server;
  const received: { contentType: string | undefined; body: string; sourceIp: string }[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString(), sourceIp: req.socket.remoteAddress ?? '' });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it('sends a signed, form-encoded OrderRefunded IPN that our verification accepts', async () => {
    const ipnUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/providers/paypro/ipn`;
    const sim = createPayProSimulator({
      vendorAccountId: secret.vendorAccountId,
      apiSecretKey: secret.apiSecretKey,
      orders: [{ orderId: 555, email: 'dana@example.com', amount: { minor: 2998, currency: 'EUR' } }],
      ipn: { url: ipnUrl, ipnSecretKey: secret.ipnSecretKey, ipnValidationKey: secret.ipnValidationKey },
    });
    const host = await startSimulatorHost({ paypro: sim });
    try {
      const connector = new PayProConnector(
        secretReader('paypro', secret, payProSecretSchema).reader,
        loadPayProConnectorConfig({ PAYPRO_API_URL: host.baseUrl('paypro') }),
      );
      const outcome = await connector.submit({
        refundId: 'rf-555',
        orderId: 'ap21-555',
        amount: { minor: 2998, currency: 'EUR' },
        payment: { provider: 'paypro', transactionId: '555', capturedMinor: 2998, reservedMinor: 2998, refundedMinor: 0, availableMinor: 0 },
        description: 'Returned',
      });
      expect(outcome).toMatchObject({ kind: 'succeeded' });
      expect(await sim.ipnDeliveries()).toEqual([{ orderId: 555, status: 200 }]);
    } finally {
      await host.close();
    }

    expect(received).toHaveLength(1);
    const delivery = received[0]!;
    expect(delivery.contentType).toBe('application/x-www-form-urlencoded');
    const ipn = parsePayProIpn(delivery.body);
    expect(ipn).toMatchObject({ ORDER_ID: '555', ORDER_TOTAL_AMOUNT: '29.98', ORDER_CURRENCY_CODE: 'EUR', ACTION_REASON: 'Returned (refund rf-555)' });
    expect(reversalSettlement(ipn)).toBe('full');
    const settings = payProInbound.loadSettings({ PAYPRO_IPN_SOURCE_IPS: '127.0.0.1' });
    const request = inboundRequest({ body: delivery.body, headers: { 'content-type': delivery.contentType! }, sourceIp: delivery.sourceIp });
    await expect(payProInbound.verify(request, secretReader('paypro', secret, payProSecretSchema).reader, settings)).resolves.toBeUndefined();
  });
});

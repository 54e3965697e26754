import { PayProConnector, type DoRefundRequestBody } from '../../../lambdas/providers/paypro/client';
import { loadPayProConnectorConfig } from '../../../lambdas/providers/paypro/config';
import { payProSecretSchema, type PayProSecret } from '../../../lambdas/providers/paypro/schemas';
import { createPayProSimulator, type PayProSimulator } from '../../../simulators/paypro/simulator';
import { WrongConnectorError, type ReversalRequest } from '../../../lambdas/providers/reversal';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';
import { secretReader } from '../../support/memory-secrets';

const secret: PayProSecret = {
  vendorAccountId: 123456,
  apiSecretKey: 'paypro-api-secret-value',
  ipnSecretKey: 'ipn-secret',
  ipnValidationKey: 'ipn-validation',
};
const CAPTURED = 4990;
const TIMEOUT_MS = 700;
const alice = 'alice@example.com';
const orders = [
  // Alice has three orders: refunding one must leave the other two alone.
  ...[1001, 1002, 1003].map((orderId) => ({ orderId, email: alice, amount: { minor: CAPTURED, currency: 'USD' } })),
  ...[2001, 2002].map((orderId) => ({ orderId, email: 'bob@example.com', amount: { minor: CAPTURED, currency: 'USD' } })),
  ...Array.from({ length: 20 }, (_, i) => ({ orderId: 3001 + i, email: `c${i}@example.com`, amount: { minor: CAPTURED, currency: 'USD' } })),
];

let host: SimulatorHost;
let sim: PayProSimulator;
let strictSim: PayProSimulator;
// The host's dice: below 0.5 a reset or hang happens after the simulator acted, above it before.
let dice = 0.25;

function connector(env: Record<string, string> = {}, prefix = 'paypro', credentials = secret): PayProConnector {
  const config = loadPayProConnectorConfig({ PAYPRO_API_URL: host.baseUrl(prefix), PAYPRO_TIMEOUT_MS: String(TIMEOUT_MS), ...env });
  return new PayProConnector(secretReader('paypro', credentials, payProSecretSchema).reader, config);
}

function reversal(transactionId: string | undefined, overrides: Partial<ReversalRequest> = {}): ReversalRequest {
  return {
    refundId: `rf-${transactionId}`,
    orderId: `ap21-${transactionId}`,
    amount: { minor: CAPTURED, currency: 'USD' },
    payment: {
      provider: 'paypro',
      capturedMinor: CAPTURED,
      reservedMinor: CAPTURED,
      refundedMinor: 0,
      availableMinor: 0,
      ...(transactionId !== undefined && { transactionId }),
    },
    description: 'Returned: linen shirt',
    ...overrides,
  };
}

beforeAll(async () => {
  sim = createPayProSimulator({ vendorAccountId: secret.vendorAccountId, apiSecretKey: secret.apiSecretKey, orders });
  strictSim = createPayProSimulator({
    vendorAccountId: secret.vendorAccountId,
    apiSecretKey: secret.apiSecretKey,
    orders,
    alreadyRefundedNotice: 'Refund is not possible for order status R',
  });
  host = await startSimulatorHost({ paypro: sim, 'paypro-strict': strictSim }, { random: () => dice });
});
afterAll(() => host.close());
const DANGER_DEMO_REASON = 'simulator demonstration: one order only, please';

afterEach(() => {
  // Whatever a test did, every body the connector sent named orders by id and nothing else.
  const fromConnector = [...sim.requests(), ...strictSim.requests()].filter((body) => body.refundReason !== DANGER_DEMO_REASON);
  for (const body of fromConnector) expect(Object.keys(body).sort()).toEqual(['apiSecretKey', 'orderIds', 'refundReason', 'vendorAccountId']);
  dice = 0.25;
  host.setFaults('paypro', { failureRate: 0, resetRate: 0, timeoutRate: 0, hangMs: 0 });
});

describe('PayPro DoRefund connector', () => {
  it('refunds exactly the one order by its id, never naming the customer', async () => {
    const outcome = await connector().submit(reversal('1002'));

    expect(outcome).toEqual({ kind: 'succeeded', providerRef: '1002', detail: 'PayPro refunded order 1002' });
    const body = sim.requests().at(-1)!;
    expect(Object.keys(body).sort()).toEqual(['apiSecretKey', 'orderIds', 'refundReason', 'vendorAccountId']);
    expect(body).toEqual({
      orderIds: [1002],
      refundReason: 'Returned: linen shirt (refund rf-1002)',
      vendorAccountId: 123456,
      apiSecretKey: secret.apiSecretKey,
    });
    expect([1001, 1002, 1003].map((id) => sim.isRefunded(id))).toEqual([false, true, false]);
    expect(host.payouts().paypro).toEqual({ '1002': 1 });
    // The answer echoes our key and the customer's e-mail; neither may reach the outcome.
    expect(JSON.stringify(outcome)).not.toMatch(new RegExp(`${secret.apiSecretKey}|@`));
  });

  it('is right to fear emailAddresses: given one, the simulator refunds every order of that customer', async () => {
    const response = await fetch(`${host.baseUrl('paypro')}/Orders/DoRefund`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...secret, orderIds: [2001], emailAddresses: ['bob@example.com'], refundReason: DANGER_DEMO_REASON }),
    });

    expect(response.status).toBe(200);
    expect(sim.isRefunded(2001) && sim.isRefunded(2002)).toBe(true);
  });

  it('cannot even be asked, at compile time, to send emailAddresses', () => {
    const body: DoRefundRequestBody = {
      orderIds: [1],
      refundReason: 'r',
      vendorAccountId: 1,
      apiSecretKey: 'k',
      // @ts-expect-error the request type has no emailAddresses: tsc fails if one is ever added
      emailAddresses: ['bob@example.com'],
    };
    expect(body.orderIds).toEqual([1]);
  });

  it('leaves a partial refund to an operator without calling PayPro', async () => {
    const before = sim.requests().length;

    const partial = await connector().submit(reversal('3001', { amount: { minor: 1000, currency: 'USD' } }));
    const over = await connector().submit(reversal('3001', { amount: { minor: CAPTURED + 1, currency: 'USD' } }));

    expect(partial).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'a partial PayPro refund (10.00 of 49.90 USD) needs an operator: DoRefund refunds whole orders only',
    });
    expect(over).toMatchObject({ kind: 'failed', retryable: false, detail: expect.stringContaining('exceeds the 49.90 USD PayPro captured') });
    expect(sim.requests().length).toBe(before);
    expect(sim.isRefunded(3001)).toBe(false);
  });

  it.each([[undefined], [''], ['abc'], ['0'], ['-5'], ['12.5'], ['1e3'], ['1234567890123456']])(
    'refuses transaction id %p as a PayPro order id without calling PayPro',
    async (transactionId) => {
      const before = sim.requests().length;
      const outcome = await connector().submit(reversal(transactionId));
      expect(outcome).toMatchObject({ kind: 'failed', retryable: false, detail: expect.stringContaining('positive integer') });
      expect(sim.requests().length).toBe(before);
    },
  );

  it('throws for a payment taken by another provider (a routing bug)', async () => {
    const request = reversal('3002');
    await expect(connector().submit({ ...request, payment: { ...request.payment, provider: 'optty' } })).rejects.toThrow(WrongConnectorError);
  });

  it.each<[string, PayProSecret, string]>([
    ['a wrong API secret key', { ...secret, apiSecretKey: 'wrong-key-value' }, 'PayPro refused DoRefund: apiSecretKey: Invalid API secret key.'],
    ['a wrong vendor account', { ...secret, vendorAccountId: 999 }, 'PayPro refused DoRefund: vendorAccountId: Vendor account not found.'],
  ])('fails permanently on %s, naming the property', async (_, credentials, detail) => {
    const outcome = await connector({}, 'paypro', credentials).submit(reversal('3003'));
    expect(outcome).toEqual({ kind: 'failed', retryable: false, detail });
    expect(JSON.stringify(outcome)).not.toContain(credentials.apiSecretKey);
    expect(sim.isRefunded(3003)).toBe(false);
  });

  it('fails permanently for an order PayPro does not know, with its notice', async () => {
    expect(await connector().submit(reversal('99999'))).toEqual({
      kind: 'failed',
      retryable: false,
      providerRef: '99999',
      detail: 'PayPro refused to refund order 99999: Order not found.',
    });
  });

  it('answers unknown, not failed, when PayPro says the order was already refunded', async () => {
    expect(await connector().submit(reversal('3004'))).toMatchObject({ kind: 'succeeded' });

    const repeat = await connector().submit(reversal('3004'));

    expect(repeat).toEqual({
      kind: 'unknown',
      detail: expect.stringContaining('PayPro says order 3004 was refunded before ("The order has already been refunded.")'),
    });
    expect(host.payouts().paypro!['3004']).toBe(1);
  });

  it('reads "already refunded" through PAYPRO_ALREADY_REFUNDED_PATTERN when PayPro words it differently', async () => {
    expect(await connector({}, 'paypro-strict').submit(reversal('3005'))).toMatchObject({ kind: 'succeeded' });

    const withDefault = await connector({}, 'paypro-strict').submit(reversal('3005'));
    const configured = await connector({ PAYPRO_ALREADY_REFUNDED_PATTERN: 'not possible for order status R' }, 'paypro-strict').submit(reversal('3005'));

    expect(withDefault).toEqual({
      kind: 'failed',
      retryable: false,
      providerRef: '3005',
      detail: 'PayPro refused to refund order 3005: Refund is not possible for order status R',
    });
    expect(configured).toMatchObject({ kind: 'unknown' });
    expect(host.payouts()['paypro-strict']).toEqual({ '3005': 1 });
  });

  it('refuses an invalid PAYPRO_ALREADY_REFUNDED_PATTERN at start-up', () => {
    expect(() => connector({ PAYPRO_ALREADY_REFUNDED_PATTERN: '(' })).toThrow(/PAYPRO_ALREADY_REFUNDED_PATTERN: must be a valid regular expression/);
  });

  it('retries later on a 5xx, which PayPro answered before acting', async () => {
    host.setFaults('paypro', { failureRate: 1 });
    expect(await connector().submit(reversal('3006'))).toEqual({ kind: 'failed', retryable: true, detail: 'PayPro answered HTTP 503' });
    expect(sim.isRefunded(3006)).toBe(false);
  });

  it('after a timeout past our deadline, retries into "already refunded": one payout, and unknown for an operator', async () => {
    host.setFaults('paypro', { timeoutRate: 1, hangMs: 1_000 });
    const started = Date.now();

    const first = await connector().submit(reversal('3007'));

    expect(Date.now() - started).toBeLessThan(900);
    expect(first).toEqual({ kind: 'unknown', detail: expect.stringContaining(`did not answer within ${TIMEOUT_MS} ms; PayPro may have refunded`) });
    host.setFaults('paypro', { timeoutRate: 0 });
    expect(await connector().submit(reversal('3007'))).toMatchObject({ kind: 'unknown' });
    expect(host.payouts().paypro!['3007']).toBe(1);
  });

  it('after a reset that followed the refund, the retry pays nothing more', async () => {
    host.setFaults('paypro', { resetRate: 1 });
    expect(await connector().submit(reversal('3008'))).toMatchObject({ kind: 'unknown' });
    expect(sim.isRefunded(3008)).toBe(true);

    host.setFaults('paypro', { resetRate: 0 });
    expect(await connector().submit(reversal('3008'))).toMatchObject({ kind: 'unknown' });
    expect(host.payouts().paypro!['3008']).toBe(1);
  });

  it('after a reset before PayPro acted, the retry refunds once', async () => {
    dice = 0.75;
    host.setFaults('paypro', { resetRate: 1 });
    // From our side a reset before PayPro acted looks the same: unknown, and the retry settles it.
    expect(await connector().submit(reversal('3009'))).toMatchObject({ kind: 'unknown' });
    expect(sim.isRefunded(3009)).toBe(false);

    host.setFaults('paypro', { resetRate: 0 });
    expect(await connector().submit(reversal('3009'))).toMatchObject({ kind: 'succeeded' });
    expect(host.payouts().paypro!['3009']).toBe(1);
  });

  it('reports status as unknown: PayPro documents no status API', async () => {
    expect(await connector().status(reversal('1002'))).toEqual({ kind: 'unknown', detail: expect.stringContaining('no documented refund status API') });
  });
});

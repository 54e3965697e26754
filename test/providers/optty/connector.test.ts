import fc from 'fast-check';
import { formatDecimal } from '../../../lambdas/domain/money';
import { OpttyConnector, opttyAmount } from '../../../lambdas/providers/optty/client';
import { loadOpttyConfig } from '../../../lambdas/providers/optty/config';
import { isRefundCallback, opttyNotificationSchema, opttySecretSchema, type OpttySecret } from '../../../lambdas/providers/optty/schemas';
import { createOpttySimulators, type OpttySimulators } from '../../../simulators/optty/simulator';
import type { ReversalRequest } from '../../../lambdas/providers/reversal';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';
import { generateLocalSecrets } from '../../../local/secrets-file';
import { secretReader } from '../../support/memory-secrets';

const secret: OpttySecret = { clientId: 'relay-client', clientSecret: 'optty-client-secret-value', merchantId: 'merchant-7' };
const TIMEOUT_MS = 300;
const clock = { ms: Date.parse('2026-03-01T00:00:00.000Z') };
const now = () => clock.ms;
// The host's dice: below 0.5 a reset or hang happens after the simulator acted, above it before.
let dice = 0.25;

let host: SimulatorHost;
let optty: OpttySimulators;

function connector(env: Record<string, string> = {}, credentials: OpttySecret = secret) {
  const { source, reader } = secretReader('optty', credentials, opttySecretSchema);
  const config = loadOpttyConfig({
    OPTTY_API_URL: host.baseUrl('optty'),
    OPTTY_AUTH_URL: host.baseUrl('optty-auth'),
    OPTTY_TIMEOUT_MS: String(TIMEOUT_MS),
    ...env,
  });
  return { connector: new OpttyConnector(reader, config, now), source };
}

function reversal(orderReference: string, overrides: Partial<ReversalRequest> = {}): ReversalRequest {
  return {
    refundId: `rf-${orderReference}`,
    orderId: `ap21-${orderReference}`,
    amount: { minor: 2498, currency: 'AUD' },
    payment: { provider: 'optty', reference: orderReference, capturedMinor: 2498, reservedMinor: 2498, refundedMinor: 0, availableMinor: 0 },
    description: 'Returned: belt',
    ...overrides,
  };
}

const payouts = () => host.payouts().optty ?? {};
const tokensSince = (start: number) => optty.tokenRequests() - start;

beforeAll(async () => {
  optty = createOpttySimulators({
    ...secret,
    now,
    orders: Array.from({ length: 60 }, (_, i) => ({ reference: `OPT-${1000 + i}`, captured: { minor: 2498, currency: 'AUD' } })),
  });
  host = await startSimulatorHost({ optty: optty.api, 'optty-auth': optty.auth }, { random: () => dice });
});
afterAll(() => host.close());
afterEach(() => {
  dice = 0.25;
  for (const prefix of ['optty', 'optty-auth']) host.setFaults(prefix, { failureRate: 0, resetRate: 0, timeoutRate: 0, hangMs: 0 });
  optty.setRejectAllTokens(false);
  optty.setPendingMode(false);
  optty.setDuplicateAnswer('replay');
  optty.setTokenTtl(86_400);
});

describe('Optty refund connector', () => {
  it('refunds with a bearer token, the exact decimal amount and our refund id as refundReference', async () => {
    const outcome = await connector().connector.submit(reversal('OPT-1000'));

    expect(outcome).toEqual({ kind: 'succeeded', providerRef: expect.stringMatching(/^[0-9a-f-]{36}$/), detail: 'Optty refund rf-OPT-1000: SUCCESSFUL' });
    expect(optty.refundBodies().at(-1)).toBe(
      '{"refundReference":"rf-OPT-1000","refundAmount":{"amount":24.98,"currency":"AUD"},"refundDescription":"Returned: belt"}',
    );
    expect(payouts()['rf-OPT-1000']).toBe(1);
  });

  it('names the order by payment.reference, or by transactionId when there is no reference', async () => {
    const request = reversal('unused', { refundId: 'rf-by-transaction' });
    const byTransaction = { ...request, payment: { ...request.payment, reference: undefined, transactionId: 'OPT-1001' } } as ReversalRequest;
    expect(await connector().connector.submit(byTransaction)).toMatchObject({ kind: 'succeeded' });
    expect(payouts()['rf-by-transaction']).toBe(1);
  });

  it('fails permanently, without calling Optty, when the payment names no order', async () => {
    const request = reversal('x');
    const before = optty.refundBodies().length;
    const outcome = await connector().connector.submit({ ...request, payment: { ...request.payment, reference: undefined } });
    expect(outcome).toMatchObject({ kind: 'failed', retryable: false, detail: expect.stringContaining('neither a reference nor a transaction id') });
    expect(optty.refundBodies().length).toBe(before);
  });

  it("fails permanently over the refund limit, with Optty's message", async () => {
    const { connector: optty1002 } = connector();
    expect(await optty1002.submit(reversal('OPT-1002', { refundId: 'rf-1002-a', amount: { minor: 1000, currency: 'AUD' } }))).toMatchObject({
      kind: 'succeeded',
    });

    const over = await optty1002.submit(reversal('OPT-1002', { refundId: 'rf-1002-b', amount: { minor: 1500, currency: 'AUD' } }));

    expect(over).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-1002-b: Optty refused it (HTTP 400: You can only refund amount up to AUD 14.98)',
    });
    expect(payouts()['rf-1002-b']).toBeUndefined();
  });

  it('fails permanently on a refund Optty cannot accept as sent (400)', async () => {
    const outcome = await connector().connector.submit(reversal('OPT-1003', { amount: { minor: 2498, currency: 'NZD' } }));
    expect(outcome).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-OPT-1003: Optty refused it (HTTP 400: refundAmount.currency must be AUD)',
    });
  });

  it('fails permanently for an order Optty does not know (404)', async () => {
    expect(await connector().connector.submit(reversal('OPT-missing'))).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-OPT-missing: Optty does not know the order (HTTP 404: Not Found)',
    });
  });

  it('retries later on a 5xx, which came before Optty acted', async () => {
    host.setFaults('optty', { failureRate: 1 });
    expect(await connector().connector.submit(reversal('OPT-1004'))).toEqual({
      kind: 'failed',
      retryable: true,
      detail: 'Optty refund rf-OPT-1004: Optty answered HTTP 503: no message',
    });
    expect(payouts()['rf-OPT-1004']).toBeUndefined();
  });

  it('after a timeout past our deadline, the retry with the same refundReference pays nothing more', async () => {
    const { connector: client } = connector();
    host.setFaults('optty', { timeoutRate: 1, hangMs: 1_000 });
    const started = Date.now();

    const first = await client.submit(reversal('OPT-1005'));

    expect(Date.now() - started).toBeLessThan(900);
    expect(first).toEqual({ kind: 'unknown', detail: expect.stringContaining(`did not answer within ${TIMEOUT_MS} ms; Optty may have accepted`) });
    expect(payouts()['rf-OPT-1005']).toBe(1);
    host.setFaults('optty', { timeoutRate: 0 });
    expect(await client.submit(reversal('OPT-1005'))).toMatchObject({ kind: 'succeeded' });
    expect(payouts()['rf-OPT-1005']).toBe(1);
  });

  it('after a reset that followed the refund, the retry replays it: same Optty id, one payout', async () => {
    const { connector: client } = connector();
    host.setFaults('optty', { resetRate: 1 });
    const lost = await client.submit(reversal('OPT-1007'));
    host.setFaults('optty', { resetRate: 0 });
    expect(lost).toMatchObject({ kind: 'unknown' });
    expect(payouts()['rf-OPT-1007']).toBe(1);

    const retried = await client.submit(reversal('OPT-1007'));

    expect(retried).toMatchObject({ kind: 'succeeded' });
    // The order lists one refund, and a follow-up finds it by the id the retry was answered with.
    const providerRef = (retried as { providerRef: string }).providerRef;
    expect(await client.status({ ...reversal('OPT-1007'), providerRef })).toMatchObject({ kind: 'succeeded', providerRef });
    expect(payouts()['rf-OPT-1007']).toBe(1);
  });

  it('answers unknown when Optty refuses a reused refundReference, and a lone refund of the same amount is not taken as ours', async () => {
    const { connector: client } = connector();
    host.setFaults('optty', { resetRate: 1 });
    expect(await client.submit(reversal('OPT-1008'))).toMatchObject({ kind: 'unknown' });
    host.setFaults('optty', { resetRate: 0 });
    optty.setDuplicateAnswer('reject');

    const retried = await client.submit(reversal('OPT-1008'));
    const synced = await client.status(reversal('OPT-1008'));

    expect(retried).toEqual({
      kind: 'unknown',
      detail: expect.stringContaining('refundReference was used before (refundReference rf-OPT-1008 already exists)'),
    });
    // It may be another refund of the same order: only an operator can tell, so nothing is booked.
    expect(synced).toEqual({ kind: 'unknown', detail: 'Optty refund rf-OPT-1008: one refund of 24.98 AUD on the order, but nothing ties it to ours' });
    expect(payouts()['rf-OPT-1008']).toBe(1);
  });

  it("maps PENDING to pending, and status sync follows it to SUCCESSFUL or DECLINED by Optty's refund id", async () => {
    const { connector: client } = connector();
    optty.setPendingMode(true);
    const paid = await client.submit(reversal('OPT-1009'));
    const declined = await client.submit(reversal('OPT-1010'));
    expect(paid).toMatchObject({ kind: 'pending', providerRef: expect.any(String) });
    const ref = (outcome: typeof paid) => ({ providerRef: (outcome as { providerRef: string }).providerRef });

    expect(await client.status(reversal('OPT-1009', ref(paid)))).toMatchObject({ kind: 'pending' });
    optty.settle('rf-OPT-1009', 'SUCCESSFUL');
    optty.settle('rf-OPT-1010', 'DECLINED');

    expect(await client.status(reversal('OPT-1009', ref(paid)))).toMatchObject({ kind: 'succeeded', providerRef: ref(paid).providerRef });
    expect(await client.status(reversal('OPT-1010', ref(declined)))).toEqual({
      kind: 'failed',
      retryable: false,
      providerRef: ref(declined).providerRef,
      detail: `Optty refund rf-OPT-1010 (found by id ${ref(declined).providerRef}): DECLINED (Declined by the payment provider)`,
    });
    expect(await client.status(reversal('OPT-1009', { providerRef: 'someone-elses-refund' }))).toMatchObject({ kind: 'unknown' });
    expect([payouts()['rf-OPT-1009'], payouts()['rf-OPT-1010']]).toEqual([1, undefined]);
  });

  it('does not guess between refunds of the same amount, and reports nothing found as unknown', async () => {
    const { connector: client } = connector();
    const half = { minor: 1249, currency: 'AUD' };
    await client.submit(reversal('OPT-1011', { refundId: 'rf-1011-a', amount: half }));
    await client.submit(reversal('OPT-1011', { refundId: 'rf-1011-b', amount: half }));

    expect(await client.status(reversal('OPT-1011', { refundId: 'rf-1011-c', amount: half }))).toEqual({
      kind: 'unknown',
      detail: 'Optty refund rf-1011-c: 2 refunds of 12.49 AUD on the order, cannot tell which is ours',
    });
    expect(await client.status(reversal('OPT-1012'))).toEqual({
      kind: 'unknown',
      detail: 'Optty refund rf-OPT-1012: Optty lists no refund of 24.98 AUD on the order',
    });
    expect(await client.status(reversal('OPT-missing'))).toMatchObject({ kind: 'unknown', detail: expect.stringContaining('HTTP 404') });
  });
});

describe('Optty access token', () => {
  it('is fetched once for many concurrent refunds (single flight) and then reused', async () => {
    const { connector: client } = connector();
    const start = optty.tokenRequests();

    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => client.submit(reversal(`OPT-${1020 + i}`))));
    await client.submit(reversal('OPT-1040'));

    expect(outcomes.map((outcome) => outcome.kind)).toEqual(Array(20).fill('succeeded'));
    expect(tokensSince(start)).toBe(1);
  });

  it('is refreshed OPTTY_TOKEN_REFRESH_MARGIN_SECONDS before it expires', async () => {
    optty.setTokenTtl(3_600);
    const { connector: client } = connector({ OPTTY_TOKEN_REFRESH_MARGIN_SECONDS: '60' });
    const start = optty.tokenRequests();

    await client.submit(reversal('OPT-1041'));
    clock.ms += 3_539_000;
    await client.submit(reversal('OPT-1042'));
    const beforeMargin = tokensSince(start);
    clock.ms += 2_000;
    await client.submit(reversal('OPT-1043'));

    expect([beforeMargin, tokensSince(start)]).toEqual([1, 2]);
    expect([payouts()['rf-OPT-1042'], payouts()['rf-OPT-1043']]).toEqual([1, 1]);
  });

  it('serves its waiting callers even when it expires within the margin, and is not cached', async () => {
    optty.setTokenTtl(30);
    const { connector: client } = connector({ OPTTY_TOKEN_REFRESH_MARGIN_SECONDS: '60' });
    const start = optty.tokenRequests();

    const outcomes = await Promise.all([client.submit(reversal('OPT-1044')), client.submit(reversal('OPT-1045'))]);
    await client.submit(reversal('OPT-1046'));

    expect(outcomes.map((outcome) => outcome.kind)).toEqual(['succeeded', 'succeeded']);
    expect(tokensSince(start)).toBe(2);
  });

  it('after a 401 is dropped, refreshed once and the refund retried once', async () => {
    const { connector: client } = connector();
    await client.submit(reversal('OPT-1047'));
    optty.revokeTokens();
    const start = optty.tokenRequests();

    expect(await client.submit(reversal('OPT-1048'))).toMatchObject({ kind: 'succeeded' });
    expect(tokensSince(start)).toBe(1);
    expect(payouts()['rf-OPT-1048']).toBe(1);
  });

  it('makes a 401 after the refresh a permanent failure (bad credentials)', async () => {
    const { connector: client } = connector();
    optty.setRejectAllTokens(true);
    const start = optty.tokenRequests();

    expect(await client.submit(reversal('OPT-1049'))).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-OPT-1049: Optty refused a freshly issued token (HTTP 401); check the client credentials',
    });
    expect(tokensSince(start)).toBe(2);
    expect(payouts()['rf-OPT-1049']).toBeUndefined();
  });

  it('fails permanently, without calling the API, when Optty refuses our client credentials', async () => {
    const { connector: client } = connector({}, { ...secret, clientSecret: 'wrong-secret' });
    const before = optty.refundBodies().length;

    const outcome = await client.submit(reversal('OPT-1050'));

    expect(outcome).toEqual({ kind: 'failed', retryable: false, detail: 'Optty refused our client credentials (HTTP 401)' });
    expect(JSON.stringify(outcome)).not.toContain('wrong-secret');
    expect(optty.refundBodies().length).toBe(before);
  });

  it('picks up a rotated client secret by re-reading the secret once', async () => {
    const { connector: client, source } = connector({}, { ...secret, clientSecret: 'retired-secret' });
    await source.get('optty', { forceFetch: false });
    source.set('optty', secret);

    expect(await client.submit(reversal('OPT-1051'))).toMatchObject({ kind: 'succeeded' });
    expect(source.reads.filter((read) => read.forceFetch)).toHaveLength(1);
  });

  it('retries later when the token endpoint fails (5xx)', async () => {
    host.setFaults('optty-auth', { failureRate: 1 });
    expect(await connector().connector.submit(reversal('OPT-1052'))).toEqual({
      kind: 'failed',
      retryable: true,
      detail: 'Optty token endpoint answered HTTP 503',
    });
    expect(payouts()['rf-OPT-1052']).toBeUndefined();
  });
});

describe('Optty amounts', () => {
  it('are exact JSON numbers built from minor units, in every currency exponent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 999_999_999_999 }), fc.constantFrom('AUD', 'JPY', 'KWD'), (minor, currency) => {
        const decimal = formatDecimal({ minor, currency });
        const expected = decimal.includes('.') ? decimal.replace(/\.?0+$/, '') : decimal;
        expect(JSON.stringify(opttyAmount({ minor, currency }))).toBe(expected);
      }),
    );
    expect(JSON.stringify({ amount: opttyAmount({ minor: 1005, currency: 'AUD' }) })).toBe('{"amount":10.05}');
    expect(opttyAmount({ minor: 29, currency: 'AUD' })).toBe(0.29);
  });

  it('refuses an amount a double cannot carry exactly', () => {
    expect(opttyAmount({ minor: 9_007_199_254_740_991, currency: 'AUD' })).toBeUndefined();
  });
});

describe('Optty notifications', () => {
  it('parse a REFUND_CALLBACK as a hint, keeping unknown fields', () => {
    const notification = opttyNotificationSchema.parse({
      event: 'REFUND_CALLBACK',
      status: 'SUCCESSFUL',
      transactionId: 'tx-1',
      refundReference: 'rf-1',
      extra: 1,
    });
    expect(isRefundCallback(notification)).toBe(true);
    expect(notification).toMatchObject({ extra: 1 });
    expect(isRefundCallback(opttyNotificationSchema.parse({ event: 'ORDER_STATUS_UPDATE', status: 'DECLINED' }))).toBe(false);
    expect(opttyNotificationSchema.safeParse({ status: 'SUCCESSFUL' }).success).toBe(false);
  });
});

describe('Optty secret', () => {
  it('is what the local secrets file generates', () => {
    expect(opttySecretSchema.safeParse(generateLocalSecrets().optty).success).toBe(true);
  });
});

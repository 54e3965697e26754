import fc from 'fast-check';
import { formatDecimal } from '../../../lambdas/domain/money';
import { opttyAmount } from '../../../lambdas/providers/optty/client';
import type { ReversalRequest } from '../../../lambdas/providers/reversal';
import { startOpttyClientWorld, type OpttyClientWorld } from '../../support/harness/optty-client';

let world: OpttyClientWorld;
beforeAll(async () => {
  world = await startOpttyClientWorld();
});
afterAll(() => world.close());
afterEach(() => world.reset());

describe('Optty refund connector', () => {
  it('refunds with a bearer token, the exact decimal amount and our refund id as refundReference', async () => {
    const outcome = await world.connector().connector.submit(world.reversal('OPT-1000'));

    expect(outcome).toEqual({ kind: 'succeeded', providerRef: expect.stringMatching(/^[0-9a-f-]{36}$/), detail: 'Optty refund rf-OPT-1000: SUCCESSFUL' });
    expect(world.optty.refundBodies().at(-1)).toBe(
      '{"refundReference":"rf-OPT-1000","refundAmount":{"amount":24.98,"currency":"AUD"},"refundDescription":"Returned: belt"}',
    );
    expect(world.payouts()['rf-OPT-1000']).toBe(1);
  });

  it('names the order by payment.reference, or by transactionId when there is no reference', async () => {
    const request = world.reversal('unused', { refundId: 'rf-by-transaction' });
    const byTransaction = { ...request, payment: { ...request.payment, reference: undefined, transactionId: 'OPT-1001' } } as ReversalRequest;
    expect(await world.connector().connector.submit(byTransaction)).toMatchObject({ kind: 'succeeded' });
    expect(world.payouts()['rf-by-transaction']).toBe(1);
  });

  it('fails permanently, without calling Optty, when the payment names no order', async () => {
    const request = world.reversal('x');
    const before = world.optty.refundBodies().length;
    const outcome = await world.connector().connector.submit({ ...request, payment: { ...request.payment, reference: undefined } });
    expect(outcome).toMatchObject({ kind: 'failed', retryable: false, detail: expect.stringContaining('neither a reference nor a transaction id') });
    expect(world.optty.refundBodies().length).toBe(before);
  });

  it("fails permanently over the refund limit, with Optty's message", async () => {
    const { connector: optty1002 } = world.connector();
    expect(await optty1002.submit(world.reversal('OPT-1002', { refundId: 'rf-1002-a', amount: { minor: 1000, currency: 'AUD' } }))).toMatchObject({
      kind: 'succeeded',
    });

    const over = await optty1002.submit(world.reversal('OPT-1002', { refundId: 'rf-1002-b', amount: { minor: 1500, currency: 'AUD' } }));

    expect(over).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-1002-b: Optty refused it (HTTP 400: You can only refund amount up to AUD 14.98)',
    });
    expect(world.payouts()['rf-1002-b']).toBeUndefined();
  });

  it('fails permanently on a refund Optty cannot accept as sent (400)', async () => {
    const outcome = await world.connector().connector.submit(world.reversal('OPT-1003', { amount: { minor: 2498, currency: 'NZD' } }));
    expect(outcome).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-OPT-1003: Optty refused it (HTTP 400: refundAmount.currency must be AUD)',
    });
  });

  it('fails permanently for an order Optty does not know (404)', async () => {
    expect(await world.connector().connector.submit(world.reversal('OPT-missing'))).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-OPT-missing: Optty does not know the order (HTTP 404: Not Found)',
    });
  });

  it('retries later on a 5xx, which came before Optty acted', async () => {
    world.host.setFaults('optty', { failureRate: 1 });
    expect(await world.connector().connector.submit(world.reversal('OPT-1004'))).toEqual({
      kind: 'failed',
      retryable: true,
      detail: 'Optty refund rf-OPT-1004: Optty answered HTTP 503: no message',
    });
    expect(world.payouts()['rf-OPT-1004']).toBeUndefined();
  });

  it('after a timeout past our deadline, the retry with the same refundReference pays nothing more', async () => {
    const { connector: client } = world.connector();
    world.host.setFaults('optty', { timeoutRate: 1, hangMs: 1_000 });
    const started = Date.now();

    const first = await client.submit(world.reversal('OPT-1005'));

    expect(Date.now() - started).toBeLessThan(900);
    expect(first).toEqual({ kind: 'unknown', detail: expect.stringContaining(`did not answer within ${world.timeoutMs} ms; Optty may have accepted`) });
    expect(world.payouts()['rf-OPT-1005']).toBe(1);
    world.host.setFaults('optty', { timeoutRate: 0 });
    expect(await client.submit(world.reversal('OPT-1005'))).toMatchObject({ kind: 'succeeded' });
    expect(world.payouts()['rf-OPT-1005']).toBe(1);
  });

  it('after a reset that followed the refund, the retry replays it: same Optty id, one payout', async () => {
    const { connector: client } = world.connector();
    world.host.setFaults('optty', { resetRate: 1 });
    const lost = await client.submit(world.reversal('OPT-1007'));
    world.host.setFaults('optty', { resetRate: 0 });
    expect(lost).toMatchObject({ kind: 'unknown' });
    expect(world.payouts()['rf-OPT-1007']).toBe(1);

    const retried = await client.submit(world.reversal('OPT-1007'));

    expect(retried).toMatchObject({ kind: 'succeeded' });
    // The order lists one refund, and a follow-up finds it by the id the retry was answered with.
    const providerRef = (retried as { providerRef: string }).providerRef;
    expect(await client.status({ ...world.reversal('OPT-1007'), providerRef })).toMatchObject({ kind: 'succeeded', providerRef });
    expect(world.payouts()['rf-OPT-1007']).toBe(1);
  });

  it('answers unknown when Optty refuses a reused refundReference, and a lone refund of the same amount is not taken as ours', async () => {
    const { connector: client } = world.connector();
    world.host.setFaults('optty', { resetRate: 1 });
    expect(await client.submit(world.reversal('OPT-1008'))).toMatchObject({ kind: 'unknown' });
    world.host.setFaults('optty', { resetRate: 0 });
    world.optty.setDuplicateAnswer('reject');

    const retried = await client.submit(world.reversal('OPT-1008'));
    const synced = await client.status(world.reversal('OPT-1008'));

    expect(retried).toEqual({
      kind: 'unknown',
      detail: expect.stringContaining('refundReference was used before (refundReference rf-OPT-1008 already exists)'),
    });
    // It may be another refund of the same order: only an operator can tell, so nothing is booked.
    expect(synced).toEqual({ kind: 'unknown', detail: 'Optty refund rf-OPT-1008: one refund of 24.98 AUD on the order, but nothing ties it to ours' });
    expect(world.payouts()['rf-OPT-1008']).toBe(1);
  });

  it("maps PENDING to pending, and status sync follows it to SUCCESSFUL or DECLINED by Optty's refund id", async () => {
    const { connector: client } = world.connector();
    world.optty.setPendingMode(true);
    const paid = await client.submit(world.reversal('OPT-1009'));
    const declined = await client.submit(world.reversal('OPT-1010'));
    expect(paid).toMatchObject({ kind: 'pending', providerRef: expect.any(String) });
    const ref = (outcome: typeof paid) => ({ providerRef: (outcome as { providerRef: string }).providerRef });

    expect(await client.status(world.reversal('OPT-1009', ref(paid)))).toMatchObject({ kind: 'pending' });
    world.optty.settle('rf-OPT-1009', 'SUCCESSFUL');
    world.optty.settle('rf-OPT-1010', 'DECLINED');

    expect(await client.status(world.reversal('OPT-1009', ref(paid)))).toMatchObject({ kind: 'succeeded', providerRef: ref(paid).providerRef });
    expect(await client.status(world.reversal('OPT-1010', ref(declined)))).toEqual({
      kind: 'failed',
      retryable: false,
      providerRef: ref(declined).providerRef,
      detail: `Optty refund rf-OPT-1010 (found by id ${ref(declined).providerRef}): DECLINED (Declined by the payment provider)`,
    });
    expect(await client.status(world.reversal('OPT-1009', { providerRef: 'someone-elses-refund' }))).toMatchObject({ kind: 'unknown' });
    expect([world.payouts()['rf-OPT-1009'], world.payouts()['rf-OPT-1010']]).toEqual([1, undefined]);
  });

  it('does not guess between refunds of the same amount, and reports nothing found as unknown', async () => {
    const { connector: client } = world.connector();
    const half = { minor: 1249, currency: 'AUD' };
    await client.submit(world.reversal('OPT-1011', { refundId: 'rf-1011-a', amount: half }));
    await client.submit(world.reversal('OPT-1011', { refundId: 'rf-1011-b', amount: half }));

    expect(await client.status(world.reversal('OPT-1011', { refundId: 'rf-1011-c', amount: half }))).toEqual({
      kind: 'unknown',
      detail: 'Optty refund rf-1011-c: 2 refunds of 12.49 AUD on the order, cannot tell which is ours',
    });
    expect(await client.status(world.reversal('OPT-1012'))).toEqual({
      kind: 'unknown',
      detail: 'Optty refund rf-OPT-1012: Optty lists no refund of 24.98 AUD on the order',
    });
    expect(await client.status(world.reversal('OPT-missing'))).toMatchObject({ kind: 'unknown', detail: expect.stringContaining('HTTP 404') });
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

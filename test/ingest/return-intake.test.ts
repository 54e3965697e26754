import { ledgerViolations, openOrder } from '../../lambdas/domain/order';
import { verificationDecision } from '../../lambdas/domain/refund';
import type { SimOrder } from '../../simulators/ap21/simulator';
import { ledgerOrderFrom, loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { LocalQueue } from '../../lambdas/services/local-queue';
import { ReturnPaymentsNotVisibleError } from '../../lambdas/services/return-intake';
import { sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import { BELT, SHIRT, startPayoutWorld, type IngestHarness, type PayoutWorld } from '../support/harness/relay-with-ap21';

let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let watermarks = 0;

let world: PayoutWorld;
beforeAll(async () => {
  world = await startPayoutWorld();
  ({ h, sims, queue } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const orderIdOf = (order: SimOrder) => `ap21-${order.orderId}`;
const now = () => new Date().toISOString();

/** Polls once with an intake that rings the in-process dispatcher, then lets the dispatcher and the sweeper finish. */
async function pollAndDispatch() {
  const run = await h.poller({ settings: { watermark: `intake-${++watermarks}` }, intake: h.intake({ doorbell: queue }) }).run();
  await queue.drained();
  await sweep(h.store, queue, Date.now());
  await queue.drained();
  return run;
}

/** The original card payment as the EPG simulator knows it, so a card reversal can be paid. */
function chargedByCard(order: SimOrder): void {
  const payment = order.payments[0]!;
  sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
}

describe('Ap21 returns already refunded elsewhere', () => {
  it('records a return Refundid refunded as paid via Refundid; no provider pays it, while an ordinary return of the order is reversed once', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    chargedByCard(order);
    const viaRefundid = h.ap21.addRefundidReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }], stan: '0938' });
    const ordinary = h.ap21.addReturn(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });

    // The Refundid return is in the changed-orders feed too, as Refundid's negative order naming the
    // original: both ways lead to the one refund ap21-<return id> (met again: already_ingested).
    expect((await pollAndDispatch()).outcomes).toEqual({ created: 2, already_ingested: 1 });

    const stored = (await h.store.getOrder(orderIdOf(order)))!;
    const refundidRefund = stored.refunds[`ap21-${viaRefundid.returnId}`]!;
    expect(refundidRefund).toMatchObject({
      state: 'paid',
      channel: 'refundid',
      source: { kind: 'ap21_refundid', ref: viaRefundid.returnId },
      amount: { minor: 11980, currency: 'AUD' },
      refs: { ap21ReturnId: viaRefundid.returnId, ap21RefundStan: '0938' },
    });
    expect(refundidRefund.nextAttemptAt).toBeUndefined();
    expect(verificationDecision(refundidRefund, now())).toBe('issued_elsewhere');
    expect(stored.refunds[`ap21-${ordinary.returnId}`]).toMatchObject({ state: 'paid', channel: 'reversal', amount: { minor: 4500 } });

    const payouts = sims.payoutsByReference();
    expect(payouts.get(`ap21-${viaRefundid.returnId}`)).toBeUndefined();
    expect(payouts.get(`ap21-${ordinary.returnId}`)).toBe(1);
    expect(stored.lines[order.lines[0]!.lineId]).toMatchObject({ refunded: 2, reserved: 0, available: 0 });
    expect(ledgerViolations(stored)).toEqual([]);
  });

  it('records a return Ap21 refunded itself (StockUpdate=False) as paid on the original payment, and never pays it again', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    chargedByCard(order);
    const refundedByAp21 = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stockUpdate: false });

    await pollAndDispatch();
    const stored = (await h.store.getOrder(orderIdOf(order)))!;
    expect(stored.refunds[`ap21-${refundedByAp21.returnId}`]).toMatchObject({
      state: 'paid',
      channel: 'reversal',
      source: { kind: 'ap21_refunded' },
      paymentId: order.payments[0]!.paymentId,
      amount: { minor: 5990 },
      refs: { ap21RefundStan: order.payments[0]!.stan },
    });
    expect(sims.payoutsByReference().get(`ap21-${refundedByAp21.returnId}`)).toBeUndefined();
  });

  it('ties a Refundid RMA we already hold to the Ap21 return showing it refunded, pending or paid, instead of refunding it again', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    const orderId = orderIdOf(order);
    const [shirtLine, beltLine] = order.lines.map((line) => line.lineId) as [string, string];
    const paymentId = order.payments[0]!.paymentId;
    // What the Refundid endpoints leave behind: the order opened from Ap21, one RMA pending, one paid.
    await h.store.putOrder(openOrder(ledgerOrderFrom(await h.client().getOrder(order.personId, order.orderId), loadAp21LedgerSettings(h.env)), now()));
    const rma = (refundId: string, lines: Record<string, number>, minor: number) =>
      h.store.createRefund(
        orderId,
        { refundId, lines, paymentId, amount: { minor, currency: 'AUD' }, route: 'refundid', source: { kind: 'refundid_rma', ref: refundId } },
        now(),
        { actor: 'refundid' },
      );
    await rma('rfd-RMA-1001', { [shirtLine]: 1 }, 5990);
    await rma('rfd-RMA-1002', { [beltLine]: 1 }, 4500);
    await h.store.applyEvent(orderId, 'rfd-RMA-1002', 'refundid_refunded', { now: now(), claimWindowMs: 0 }, { actor: 'refundid' });

    const shirtReturn = h.ap21.addRefundidReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const beltReturn = h.ap21.addRefundidReturn(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }], stan: '0939' });
    expect((await pollAndDispatch()).outcomes).toEqual({ linked: 2 });
    expect((await pollAndDispatch()).outcomes).toEqual({ already_ingested: 2 });

    const stored = (await h.store.getOrder(orderId))!;
    expect(Object.keys(stored.refunds).sort()).toEqual(['rfd-RMA-1001', 'rfd-RMA-1002']);
    expect(stored.refunds['rfd-RMA-1001']).toMatchObject({ state: 'paid', channel: 'refundid', refs: { ap21ReturnId: shirtReturn.returnId } });
    expect(stored.refunds['rfd-RMA-1002']).toMatchObject({ state: 'paid', channel: 'refundid', refs: { ap21ReturnId: beltReturn.returnId } });
    expect(stored.lines[shirtLine]).toMatchObject({ refunded: 1, reserved: 0, available: 1 });
    expect(stored.lines[beltLine]).toMatchObject({ refunded: 1, reserved: 0, available: 0 });
    expect(stored.timeline.filter((entry) => entry.actor === 'ap21').map((entry) => [entry.event, entry.refundId])).toEqual(
      expect.arrayContaining([
        ['refundid_refunded', 'rfd-RMA-1001'],
        ['external_ref_recorded', 'rfd-RMA-1002'],
      ]),
    );
    expect(ledgerViolations(stored)).toEqual([]);
    expect([...sims.payoutsByReference().keys()].filter((reference) => reference.startsWith('rfd-'))).toEqual([]);
  });

  it('refuses to ingest while Ap21 is read below payload version 4.0, where a Refundid refund would look unpaid', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    h.ap21.addRefundidReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const name = `intake-${++watermarks}`;
    await expect(h.poller({ settings: { watermark: name }, client: h.client({ AP21_API_VERSION: '2.0' }) }).run()).rejects.toThrow(
      ReturnPaymentsNotVisibleError,
    );
    expect(await h.store.getOrder(orderIdOf(order))).toBeUndefined();
    const mark = await h.store.getWatermark(name);
    expect(mark?.cursor?.seen).toEqual([]);
  });
});

describe('turning an Ap21 return into a refund', () => {
  it('sends a card refund to Apace only when the stage names a trusted source of the last four digits', async () => {
    const payment = (reference: string) => [{ origin: 'CreditCard', cardType: 'VISA', stan: `S-${reference}`, reference, amountMinor: 5990 }];
    const cases = [
      { env: {}, reference: '************7001', route: 'reversal', lastFour: undefined },
      { env: { AP21_CARD_LAST_FOUR_FIELD: 'Reference' }, reference: '************7001', route: 'apace', lastFour: '7001' },
      { env: { AP21_CARD_LAST_FOUR_FIELD: 'Reference' }, reference: 'Ref-7001', route: 'reversal', lastFour: undefined },
    ];
    for (const { env, reference, route, lastFour } of cases) {
      const order = h.ap21.addOrder({ lines: [{ ...SHIRT, quantity: 1 }], payments: payment(reference) });
      const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
      const client = h.client();
      const intake = h.intake({ ledger: loadAp21LedgerSettings({ ...h.env, ...env }) });
      const outcome = await intake.ingest(
        await client.getOrder(order.personId, order.orderId),
        await client.getReturn(order.personId, order.orderId, ret.returnId),
      );
      const stored = (await h.store.getOrder(orderIdOf(order)))!;
      expect(stored.payments[order.payments[0]!.paymentId]!.cardLastFour).toBe(lastFour);
      expect(outcome).toMatchObject({ kind: 'created', refund: { channel: route, state: route === 'apace' ? 'offer_pending' : 'reversal_pending' } });
      if (route === 'apace' && outcome.kind === 'created') {
        expect(Date.parse(outcome.refund.offerExpiresAt!) - Date.now()).toBeGreaterThan(9.9 * 24 * 3600_000);
      }
    }
  });

  it('takes a SKU sold on two lines from the lowest line first, and values each unit by what its line cost', async () => {
    const order = h.ap21.addOrder({ lines: [{ skuId: '21503', quantity: 1, priceMinor: 5990 }, { skuId: '21503', quantity: 2, priceMinor: 4990 }, BELT] });
    const first = h.ap21.addReturn(order.orderId, { lines: [{ skuId: '21503', quantity: -2 }] });
    const second = h.ap21.addReturn(order.orderId, { lines: [{ skuId: '21503', quantity: -1 }] });
    await h.poller({ settings: { watermark: `intake-${++watermarks}` } }).run();
    const stored = (await h.store.getOrder(orderIdOf(order)))!;
    const [cheapest, dearer] = [order.lines[0]!.lineId, order.lines[1]!.lineId];
    expect(stored.refunds[`ap21-${first.returnId}`]).toMatchObject({ lines: { [cheapest]: 1, [dearer]: 1 }, amount: { minor: 5990 + 4990 } });
    expect(stored.refunds[`ap21-${second.returnId}`]).toMatchObject({ lines: { [dearer]: 1 }, amount: { minor: 4990 } });
  });

  it('keeps a return no rule can refund for an operator, once, and carries on with the rest', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    const refundable = h.ap21.addReturn(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });
    const twice = h.ap21.addReturn(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });
    const other = h.ap21.addOrder({ lines: [SHIRT] });
    const fine = h.ap21.addReturn(other.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const name = `intake-${++watermarks}`;
    expect(await h.poller({ settings: { watermark: name } }).run()).toMatchObject({ stop: 'caught_up', outcomes: { created: 2, isolated: 1 } });
    expect(await h.poller({ settings: { watermark: name } }).run()).toMatchObject({ outcomes: { already_ingested: 2, isolated: 1 } });

    expect(Object.keys((await h.store.getOrder(orderIdOf(order)))!.refunds)).toEqual([`ap21-${refundable.returnId}`]);
    expect(Object.keys((await h.store.getOrder(orderIdOf(other)))!.refunds)).toEqual([`ap21-${fine.returnId}`]);
    // Set aside once for an operator, with the rule's reason and the return as Ap21 sent it.
    expect(await h.store.getIsolation('ap21', `return:${twice.returnId}`)).toMatchObject({
      reason: expect.stringContaining('SKU 880: 1 unit(s) returned, 0 not yet refunded or in flight') as string,
      raw: expect.stringContaining(`"returnId":"${twice.returnId}"`) as string,
      attributes: { ap21OrderId: order.orderId, returnId: twice.returnId },
    });
  });

  it('creates one refund when the same return is ingested ten times at once', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const client = h.client();
    const [ap21Order, ap21Return] = [await client.getOrder(order.personId, order.orderId), await client.getReturn(order.personId, order.orderId, ret.returnId)];
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => h.intake().ingest(ap21Order, ap21Return)));
    const kinds = outcomes.map((outcome) => outcome.kind);
    expect(kinds.filter((kind) => kind === 'created')).toHaveLength(1);
    expect(kinds.filter((kind) => kind === 'already_ingested')).toHaveLength(9);
    const stored = (await h.store.getOrder(orderIdOf(order)))!;
    expect(Object.keys(stored.refunds)).toEqual([`ap21-${ret.returnId}`]);
    expect(stored.lines[order.lines[0]!.lineId]).toMatchObject({ reserved: 1, available: 1 });
  });
});

import { userInfo } from 'node:os';
import { ledgerViolations } from '../../lambdas/domain/order';
import { RECEIPT_WAIVED_REF } from '../../lambdas/domain/refund';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { ReturnIntake } from '../../lambdas/services/return-intake';
import { sweep } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { runOps } from '../../tools/ops/cli';
import { waiveReceipt } from '../../tools/ops/commands';
import type { OpsTarget } from '../../tools/ops/target';
import { DAY_MS, demoOrderWithRefund } from '../support/fixtures';
import { gatedStore } from '../support/gated-store';
import { startPayoutWorld, type PayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * `npm run ops -- waive-receipt <refundId> --reason …` (docs/design.md §2.9), over dynalite, the Ap21
 * simulator and the EPG simulator on real HTTP: a refund waiting for its return's receipt goes to its
 * channel as the receipt would release it, by the operator, and is paid exactly once, also when a
 * read of Ap21 showing the receipt races the operator.
 */
const RULES = { AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '1' };
const COAT = { skuId: '52001', quantity: 1, priceMinor: 18000, productName: 'WOOL COAT' };
const REASON = 'courier proof of delivery to the warehouse';

let world: PayoutWorld;
let watermarks = 0;
beforeAll(async () => {
  world = await startPayoutWorld(RULES);
});
afterAll(() => world.close());
beforeEach(() => world.h.newEra());

async function ops(argv: string[]) {
  let out = '';
  let err = '';
  const env = { ...process.env, ...world.sims.env };
  const code = await runOps(argv, { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) }, { env, now: () => new Date() });
  return { code, out, err };
}

const target = (store: OrderStore = world.h.store): OpsTarget =>
  ({ name: 'test', tableName: 'refund-relay-test', store, claimWindowMs: 0, doorbell: world.queue, reversals: {}, apaceOfferDays: 10 }) as unknown as OpsTarget;

function intake(now?: () => number, store?: OrderStore): ReturnIntake {
  return world.h.intake({ doorbell: world.queue, ledger: loadAp21LedgerSettings({ ...world.h.env, ...RULES }), ...(now && { now }), ...(store && { store }) });
}

/** What the stage's own loop does next: the sweeper finds what is due, the queue dispatches it. */
async function settle() {
  await world.queue.drained();
  await sweep(world.h.store, world.queue, Date.now());
  await world.queue.drained();
}

/** An EPG-paid coat returned and seen by the poller, its refund waiting for Ap21 to show the return received. */
async function waitingCoat(seenAt?: () => number) {
  const { h, sims } = world;
  const order = h.ap21.addOrder({ lines: [COAT] });
  const payment = order.payments[0]!;
  sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: COAT.skuId, quantity: -1 }] });
  await h.poller({ settings: { watermark: `waive-${++watermarks}` }, intake: intake(seenAt) }).run();
  await settle();
  const orderId = `ap21-${order.orderId}`;
  const refundId = `ap21-${ret.returnId}`;
  return { order, ret, orderId, refundId, refund: async () => (await h.store.getOrder(orderId))!.refunds[refundId]! };
}

const paidBy = (refundId: string) => world.sims.payoutsByReference().get(refundId);

/** A read of the return as Ap21 shows it now (received), fed to the intake over `store`. */
async function receiptRead(order: SimOrder, ret: SimReturn) {
  world.h.ap21.setReturnStatus(ret.returnId, 'Return Received');
  const client = world.h.client();
  const [ap21Order, ap21Return] = await Promise.all([
    client.getOrder(order.personId, order.orderId),
    client.getReturn(order.personId, order.orderId, ret.returnId),
  ]);
  return (store?: OrderStore) => intake(undefined, store).ingest(ap21Order, ap21Return);
}

async function expectPaidOnce(coat: Awaited<ReturnType<typeof waitingCoat>>) {
  await settle();
  const stored = (await world.h.store.getOrder(coat.orderId))!;
  expect(stored.refunds[coat.refundId]).toMatchObject({ state: 'paid', channel: 'reversal' });
  expect(ledgerViolations(stored)).toEqual([]);
  expect(paidBy(coat.refundId)).toBe(1);
  const releases = (await world.h.store.readTimeline(coat.orderId)).filter((entry) => entry.refundId === coat.refundId && entry.event === 'return_received');
  expect(releases).toHaveLength(1);
  return releases[0]!;
}

describe('npm run ops -- waive-receipt', () => {
  it('releases a refund awaiting its receipt to card reversal by the operator, paid exactly once, a later receipt changing nothing', async () => {
    const coat = await waitingCoat();
    expect(await coat.refund()).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal' });
    expect(paidBy(coat.refundId)).toBeUndefined();

    const { code, out, err } = await ops(['waive-receipt', coat.refundId, '--reason', REASON, '--json']);
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(out)).toEqual({
      orderId: coat.orderId,
      refundId: coat.refundId,
      from: 'awaiting_receipt',
      to: 'reversal_pending',
      event: 'return_received',
      receiptWaivedAt: expect.any(String),
      rung: false,
    });
    const release = await expectPaidOnce(coat);
    expect(release).toMatchObject({
      actor: 'operator',
      from: 'awaiting_receipt',
      to: 'reversal_pending',
      note: `receipt waived by ${userInfo().username}: ${REASON}`,
    });
    expect((await coat.refund()).refs[RECEIPT_WAIVED_REF]).toBe((JSON.parse(out) as { receiptWaivedAt: string }).receiptWaivedAt);

    // Ap21 shows the return received later: nothing more is paid.
    const read = await receiptRead(coat.order, coat.ret);
    expect(await read()).toMatchObject({ kind: 'already_ingested' });
    await settle();
    expect(paidBy(coat.refundId)).toBe(1);
  });

  it('refuses, saying why, a refund in any other state, one whose wait ran out (redrive or release it), and a waiver without a reason', async () => {
    const coat = await waitingCoat();
    expect(await ops(['waive-receipt', coat.refundId])).toMatchObject({ code: 1, err: expect.stringContaining('waive-receipt needs a reason') });
    await waiveReceipt(target(), coat.refundId, { operator: 'casey', reason: REASON });
    await expectPaidOnce(coat);
    const paid = await ops(['waive-receipt', coat.refundId, '--reason', REASON]);
    expect(paid).toMatchObject({ code: 1, out: '' });
    expect(paid.err).toContain(
      `refund ${coat.refundId} of order ${coat.orderId} is paid, not awaiting_receipt: only a refund awaiting its return's receipt can have the receipt waived`,
    );

    // Seen two days ago on a one-day wait: in manual review already, where redrive or release end it.
    const overdue = await waitingCoat(() => Date.now() - 2 * DAY_MS);
    expect(await overdue.refund()).toMatchObject({ state: 'manual_review' });
    const late = await ops(['waive-receipt', overdue.refundId, '--reason', REASON]);
    expect(late.code).toBe(1);
    expect(late.err).toContain(
      'is manual_review, not awaiting_receipt: its wait ran out and it is in manual review: redrive it (card reversal now) or release it',
    );
    expect(await overdue.refund()).toMatchObject({ state: 'manual_review' });
    expect(paidBy(overdue.refundId)).toBeUndefined();
  });

  it('requests the Apace offer of an Apace refund awaiting its receipt, its days counted from the waiver', async () => {
    const now = Date.now();
    const { orderId, refundId } = await demoOrderWithRefund(world.h.store, `waive-apace-${now}`, {
      route: 'apace',
      offerExpiresAt: new Date(now + 10 * DAY_MS).toISOString(),
      awaitReceiptUntil: new Date(now + DAY_MS).toISOString(),
      source: { kind: 'ap21_return', ref: 'RET-A1' },
    });
    const waivedAt = new Date(now + 3 * DAY_MS);
    const result = await waiveReceipt({ ...target(), doorbell: undefined }, refundId, { operator: 'casey', reason: REASON, now: waivedAt });
    expect(result.json).toMatchObject({ from: 'awaiting_receipt', to: 'offer_pending', event: 'return_received_for_offer' });
    const refund = (await world.h.store.getOrder(orderId))!.refunds[refundId]!;
    expect(refund).toMatchObject({ state: 'offer_pending', channel: 'apace', offerExpiresAt: new Date(waivedAt.getTime() + 10 * DAY_MS).toISOString() });
    expect(refund.refs[RECEIPT_WAIVED_REF]).toBe(waivedAt.toISOString());
  });
});

describe('waive-receipt racing a read of Ap21 that shows the receipt', () => {
  it('the read releases the refund between the operator reading it and writing: the waiver is refused, paid once', async () => {
    const coat = await waitingCoat();
    const read = await receiptRead(coat.order, coat.ret);
    let readOutcome: unknown;
    const racing = gatedStore(world.h.store, 'return_received', async () => {
      readOutcome = await read();
    });
    await expect(waiveReceipt(target(racing), coat.refundId, { operator: 'casey', reason: REASON })).rejects.toThrow(
      `refund ${coat.refundId} changed meanwhile (now reversal_pending): nothing waived`,
    );
    expect(readOutcome).toMatchObject({ kind: 'received' });
    expect(await expectPaidOnce(coat)).toMatchObject({ actor: 'ap21' });
    expect((await coat.refund()).refs[RECEIPT_WAIVED_REF]).toBeUndefined();
  });

  it('the operator waives between the read deciding and writing: the read finds it released, paid once', async () => {
    const coat = await waitingCoat();
    const read = await receiptRead(coat.order, coat.ret);
    const outcome = await read(
      gatedStore(world.h.store, 'return_received', () => waiveReceipt(target(), coat.refundId, { operator: 'casey', reason: REASON })),
    );
    expect(outcome).toMatchObject({ kind: 'already_ingested' });
    expect(await expectPaidOnce(coat)).toMatchObject({ actor: 'operator' });
  });

  it('pays once whichever of the two concurrent calls writes first', async () => {
    const coats = await Promise.all([1, 2, 3, 4].map(() => waitingCoat()));
    const reads = await Promise.all(coats.map((coat) => receiptRead(coat.order, coat.ret)));
    const results = await Promise.allSettled(
      coats.flatMap((coat, i) => [waiveReceipt(target(), coat.refundId, { operator: 'casey', reason: REASON }), reads[i]!()]),
    );
    // Only the operator may lose loudly: a read that finds the refund released says so.
    for (const result of results) if (result.status === 'rejected') expect(String(result.reason)).toContain('changed meanwhile');
    for (const coat of coats) await expectPaidOnce(coat);
  });
});

import { ledgerViolations } from '../../lambdas/domain/order';
import type { Refund } from '../../lambdas/domain/refund';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import { createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { rmaPushSchema } from '../../lambdas/providers/refundid/schemas';
import { applyRmaPush } from '../../lambdas/services/refundid-rma';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import type { ProviderSimulators } from '../../local/simulators';
import type { SimOrder } from '../../simulators/ap21/simulator';
import type { Rma, RefundidSimulator } from '../../simulators/refundid/simulator';
import { gatedCreateStore } from '../support/gated-store';
import { startRefundidPayoutWorld, type IngestHarness, type RefundidPayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Review of `refundid_record_withdrawn` (2026-12-03, docs/design.md §2.2–2.3): when a first `refundid`
 * push and the poller each book one Refundid payout, the second writer withdraws Ap21's record
 * (units and money back to available). Un-booking is the dangerous direction: units made available
 * again can be paid again on another channel. These cases play two *real* payouts for two identical
 * shirts (two RMAs, two Ap21 returns), over dynalite, the local server, and the Ap21 and EPG
 * simulators on HTTP, with a dispatcher.
 */
let world: RefundidPayoutWorld;
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let portal: RefundidSimulator;
let rounds = 0;

beforeAll(async () => {
  world = await startRefundidPayoutWorld();
  ({ h, sims, queue, portal } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const SHIRT = { skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'LINEN SHIRT' };

interface Placed {
  readonly sim: SimOrder;
  readonly orderId: string;
  readonly shirt: string;
}

/** Two identical shirts paid by an EPG card, the ledger opened by Refundid's order fetch. */
async function placeOrder(): Promise<Placed> {
  const stan = `WD-${Date.now()}-${++rounds}`;
  const card = { origin: 'CreditCard', cardType: 'VISA', stan, amountMinor: 2 * SHIRT.priceMinor };
  const sim = h.ap21.addOrder({ email: 'alice@example.com', lines: [SHIRT], payments: [card] });
  sims.addonPayments.seedTransaction(stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const fetched = await portal.fetchOrder({ shop: 'demo', order_number: sim.orderNumber, email: 'alice@example.com' });
  expect(fetched.status).toBe(200);
  return { sim, orderId: `ap21-${sim.orderId}`, shirt: sim.lines[0]!.lineId };
}

const oneShirt = (placed: Placed, refundidId: string): Rma => ({
  refundid_id: refundidId,
  line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: placed.shirt, quantity: 1 }],
});

const orderOf = async (placed: Placed) => (await h.store.getOrder(placed.orderId))!;
const paidRefunds = async (placed: Placed): Promise<Refund[]> => Object.values((await orderOf(placed)).refunds).filter((refund) => refund.state === 'paid');

/** The refundid push of `push` as Refundid sends it, applied through `store`. */
const applyRefundid = (store: OrderStore, push: Rma) => {
  const raw = JSON.stringify({ ...push, status: 'refundid' });
  return applyRmaPush(store, rmaPushSchema.parse(JSON.parse(raw)), raw, { now: new Date().toISOString(), claimWindowMs: 0 });
};

/** Ap21 shows Refundid's refund of one shirt (its payment's Stan `stan`), read as the poller reads it; `ingest` books what was read. */
async function refundidReturnRead(placed: Placed, stan: string) {
  const ret = h.ap21.addRefundidReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan });
  const reader = h.client();
  const read = await Promise.all([
    reader.getOrder(placed.sim.personId, placed.sim.orderId),
    reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
  ]);
  return { ret, ingest: (store: OrderStore = h.store) => h.intake({ store, ledger: loadAp21LedgerSettings(h.env) }).ingest(...read) };
}

/** A return of one shirt that Ap21 shows without a refund yet (lodged, its Refundid payment not written): read and ingested. */
async function plainReturnIngested(placed: Placed): Promise<{ returnId: string; outcome: unknown }> {
  const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
  const reader = h.client();
  const read = await Promise.all([
    reader.getOrder(placed.sim.personId, placed.sim.orderId),
    reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
  ]);
  const outcome = await h
    .intake({ ledger: loadAp21LedgerSettings(h.env) })
    .ingest(...read)
    .catch((error: unknown) => ({ refused: (error as Error).message }));
  return { returnId: ret.returnId, outcome };
}

async function settle(): Promise<void> {
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

/** Both shirts booked as paid through Refundid, none free for another channel, and no card payout for `plainReturnId`. */
async function expectTwoBookings(placed: Placed, plainReturnId: string): Promise<void> {
  await settle();
  expect(sims.addonPayments.payouts().get(`ap21-${plainReturnId}`)).toBeUndefined();
  const order = await orderOf(placed);
  expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 2, available: 0 });
  expect((await paidRefunds(placed)).map((refund) => refund.channel)).toEqual(['refundid', 'refundid']);
  expect(ledgerViolations(order)).toEqual([]);
}

describe('review: two real Refundid payouts for two identical shirts are never booked once', () => {
  // The customer returned shirt 1 through Refundid (RMA 1, paid; Ap21 shows it as return R1, its `refunding` and
  // `refundid` pushes not here yet) and then shirt 2 (RMA 2, paid). RMA 2's first `refundid` push reads the order,
  // the poller records R1, the push books RMA 2: two payouts, two bookings. Before (it.failing since the review): the
  // push's re-read took R1's record for a second booking of RMA 2's payout by units alone and withdrew it: 1 shirt
  // refunded for 2 payouts, and the second shirt's return, lodged in Ap21 before its Refundid payment shows, was
  // refunded on the card as well (EPG payout 1). Now only a record whose payment names the RMA is withdrawn.
  // `ids` says whether the Refundid payment's Stan in Ap21 is the RMA's refundid_id (UNCONFIRMED, docs/providers.md §2–3).
  // Control: with twinRecordedFromAp21's fallback to the first record with the same units (`?? same[0]`), both fail.
  it.each([
    ['Stan names the RMA', true],
    ['Stan unrelated to the RMA', false],
  ])('keeps both bookings when the poller records RMA 1 from Ap21 while RMA 2 is booked (%s)', async (_, ids) => {
    const placed = await placeOrder();
    const [first, second] = [`rid-wd-1-${++rounds}`, `rid-wd-2-${rounds}`];
    const { ret, ingest } = await refundidReturnRead(placed, ids ? first : `ST-${rounds}`);
    let polled: unknown;
    const store = gatedCreateStore(h.store, async () => {
      polled = await ingest();
    });
    expect(await applyRefundid(store, oneShirt(placed, second))).toEqual({ received: true, refund_id: `rfd-${second}`, state: 'paid' });
    expect(polled).toMatchObject({ kind: 'created', refund: { id: `ap21-${ret.returnId}` } });
    const lodged = await plainReturnIngested(placed);
    await expectTwoBookings(placed, lodged.returnId);
  });

  // The reverse interleaving: the poller reads R1, RMA 2's push books, the poller writes R1's record and reads again;
  // it withdrew its record for RMA 2's refund, matched by units. Control: with withdrawIfBookedTwice taking
  // matchingRefundidRma's match unnamed, both fail.
  it.each([
    ['Stan names the RMA', true],
    ['Stan unrelated to the RMA', false],
  ])('keeps both bookings when RMA 2 is booked between the poller read of RMA 1 and its write (%s)', async (_, ids) => {
    const placed = await placeOrder();
    const [first, second] = [`rid-wd-1-${++rounds}`, `rid-wd-2-${rounds}`];
    const { ret, ingest } = await refundidReturnRead(placed, ids ? first : `ST-${rounds}`);
    let pushed: unknown;
    const gated = gatedCreateStore(h.store, async () => {
      pushed = await applyRefundid(h.store, oneShirt(placed, second));
    });
    await ingest(gated);
    expect(pushed).toEqual({ received: true, refund_id: `rfd-${second}`, state: 'paid' });
    expect((await orderOf(placed)).refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid' });
    const lodged = await plainReturnIngested(placed);
    await expectTwoBookings(placed, lodged.returnId);
  });
});

describe('review: one Refundid payout booked at once by its push and the poller is booked once whichever id Ap21 shows', () => {
  // Ap21's record of one payout and the RMA's first `refundid` push book it at once, the push writing last. Which of
  // the Refundid payment's Stan or Reference carries the refundid_id is UNCONFIRMED (docs/providers.md §2–3); the
  // poller's check names the RMA by either, but the record kept only the Stan, so the push's check could not name it
  // by its Reference and both bookings stayed: 2 shirts refunded for one payout (it.failing since the review). Now the
  // record keeps the Reference too (`refs.ap21RefundReference`). Control: without it, 2 shirts refunded.
  it('withdraws the record whose Refundid payment names the RMA by its Reference', async () => {
    const placed = await placeOrder();
    const id = `rid-wd-ref-${++rounds}`;
    const ret = h.ap21.addReturn(placed.sim.orderId, {
      lines: [{ skuId: SHIRT.skuId, quantity: -1 }],
      payments: [{ merchantId: 'Refundid', cardType: 'Refundid', origin: 'CreditCard', stan: `ST-${rounds}`, reference: id, amountMinor: -SHIRT.priceMinor }],
    });
    const reader = h.client();
    const read = await Promise.all([
      reader.getOrder(placed.sim.personId, placed.sim.orderId),
      reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
    ]);
    const store = gatedCreateStore(h.store, () => h.intake({ ledger: loadAp21LedgerSettings(h.env) }).ingest(...read));
    expect(await applyRefundid(store, oneShirt(placed, id))).toEqual({ received: true, refund_id: `rfd-${id}`, state: 'paid' });
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(order.refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'released', refs: { refundidId: id, refundidBookedAs: `rfd-${id}` } });
    expect(ledgerViolations(order)).toEqual([]);
  });
});

/** A `refundid` push as Refundid sends it, sent again while the answer is a 5xx (contention: "try again"), as Refundid retries. */
async function pushAnswered(push: Rma): Promise<{ status: number; body: unknown }> {
  let answer = await portal.push('refundid', push);
  for (let attempt = 1; attempt < 5 && answer.status >= 500; attempt++) answer = await portal.push('refundid', push);
  return answer;
}

describe('review: two real Refundid payouts, their pushes and the poller reads all at once, then retried', () => {
  // RMA 1 and RMA 2 (one shirt each, both paid, their `refunding` lost) push `refundid` while the poller reads Ap21's
  // returns R1 and R2 of them, all at once over dynalite, in whatever order each round takes; then Refundid retries
  // both pushes and the poller reads both returns again. Both payouts stay booked (2 shirts), no retry is refused, a
  // second retry changes nothing (no flip-flop), and a card return of a shirt finds none left to pay.
  it.each([
    ['Stan names the RMA', true],
    ['Stan unrelated to the RMA', false],
  ])('ends with two bookings in every round (%s)', async (_, ids) => {
    for (let round = 0; round < 3; round++) {
      const placed = await placeOrder();
      const [first, second] = [`rid-all-1-${++rounds}`, `rid-all-2-${rounds}`];
      const reads = [await refundidReturnRead(placed, ids ? first : `ST-1-${rounds}`), await refundidReturnRead(placed, ids ? second : `ST-2-${rounds}`)];
      const wave = () =>
        Promise.all([
          pushAnswered(oneShirt(placed, first)),
          pushAnswered(oneShirt(placed, second)),
          ...reads.map(({ ingest }) => ingest().catch((error: unknown) => ({ refused: (error as Error).message }))),
        ]);
      await wave();
      const retried = await wave();
      // A push refused for units the records took leaves its RMA linked to a refund never created: for STALE_LINK_MS a
      // retry is 503 "being recorded by another delivery", never a refusal.
      for (const answer of retried.slice(0, 2)) expect([200, 503]).toContain((answer as { status: number }).status);
      const booked = await orderOf(placed);
      expect(booked.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 2, available: 0 });
      await wave();
      expect(await orderOf(placed)).toMatchObject({ lines: booked.lines, refunds: booked.refunds });
      const lodged = await plainReturnIngested(placed);
      await expectTwoBookings(placed, lodged.returnId);
    }
  });
});

describe('review: a refundid push after failed, racing the poller', () => {
  // Refundid reported the RMA failed (its reservation released), then paid after all: the `refundid` push books the
  // units again (`rfd-<id>-paid`) while the poller records Ap21's return of that payout, neither seeing the other.
  // Before (it.failing since the review): the re-booking made no check after its write, as the first booking does, so
  // 2 shirts stayed refunded for one payout and the customer's later return of the other shirt found no unit. Now it
  // reads again after its write (withdrawTwin) as a first booking does. Control: without that check, 2 shirts refunded.
  it('books one shirt when the re-booking of a refundid after failed and the poller record one payout at once', async () => {
    const placed = await placeOrder();
    const id = `rid-wd-rebook-${++rounds}`;
    expect((await portal.push('refunding', oneShirt(placed, id))).status).toBe(200);
    expect((await portal.push('failed', oneShirt(placed, id))).body).toMatchObject({ state: 'released' });
    const { ret, ingest } = await refundidReturnRead(placed, id);
    let polled: unknown;
    const store = gatedCreateStore(h.store, async () => {
      polled = await ingest();
    });
    await expect(applyRefundid(store, oneShirt(placed, id))).rejects.toThrow(`refund rfd-${id} is released`);
    expect(polled).toMatchObject({ kind: 'created', refund: { id: `ap21-${ret.returnId}` } });
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect((await paidRefunds(placed)).map((refund) => refund.id)).toEqual([`rfd-${id}-paid`]);
    expect(ledgerViolations(order)).toEqual([]);
  });
});

describe('review: after a withdrawal, later pushes and reads change nothing', () => {
  // One payout booked at once by its first push and the poller (Stan naming the RMA): Ap21's record withdrawn. Then a
  // contradicting `failed` push, the `refundid` retried, the poller reading the return again twice, and the order fetch:
  // one shirt booked throughout (no re-booking of the record, no flip back), the other returnable.
  it('keeps one booking through a later failed push, retries and re-reads', async () => {
    const placed = await placeOrder();
    const id = `rid-wd-after-${++rounds}`;
    const { ret, ingest } = await refundidReturnRead(placed, id);
    const store = gatedCreateStore(h.store, () => ingest());
    await applyRefundid(store, oneShirt(placed, id));
    const withdrawn = await orderOf(placed);
    expect(withdrawn.refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'released', refs: { refundidBookedAs: `rfd-${id}` } });
    expect((await portal.push('failed', oneShirt(placed, id))).body).toMatchObject({ refund_id: `rfd-${id}`, state: 'paid' });
    expect((await portal.push('refundid', oneShirt(placed, id))).body).toMatchObject({ refund_id: `rfd-${id}`, state: 'paid' });
    expect(await ingest()).toMatchObject({ kind: 'already_ingested' });
    expect(await ingest()).toMatchObject({ kind: 'already_ingested' });
    const after = await orderOf(placed);
    expect(after.lines).toEqual(withdrawn.lines);
    expect(after.refunds[`ap21-${ret.returnId}`]).toEqual(withdrawn.refunds[`ap21-${ret.returnId}`]);
    expect((await paidRefunds(placed)).map((refund) => refund.id)).toEqual([`rfd-${id}`]);
    const fetched = await portal.fetchOrder({ shop: 'demo', order_number: placed.sim.orderNumber, email: 'alice@example.com' });
    expect(JSON.stringify(fetched.body)).toContain('"returnable_quantity":1');
  });
});

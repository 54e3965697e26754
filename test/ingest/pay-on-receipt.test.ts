import * as metrics from '../../lambdas/commons/metrics';
import { ledgerViolations } from '../../lambdas/domain/order';
import { RECEIPT_OVERDUE_REASON } from '../../lambdas/domain/refund';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import type { ReturnIntake } from '../../lambdas/services/return-intake';
import type { OrderStore } from '../../lambdas/store/order-store';
import { sweep } from '../../lambdas/services/sweeper';
import type { ProviderSimulators } from '../../local/simulators';
import { manualReview } from '../../tools/ops/commands';
import type { OpsTarget } from '../../tools/ops/target';
import { startPayoutWorld, type IngestHarness, type PayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Issue 15 point 4 (docs/design.md §2.9), over dynalite, the Ap21 simulator and the EPG simulator on
 * real HTTP: a stage that reverses cards only once Ap21 shows the return received sends no reversal
 * before that, exactly one after; a wait that runs out reaches an operator; a return already
 * received pays at once; a receipt seen by the poller and a push at once pays once.
 */
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let world: PayoutWorld;
let watermarks = 0;

// The stage reverses EPG cards on receipt; every other channel pays when the return is seen.
beforeAll(async () => {
  world = await startPayoutWorld({ AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '1' });
  ({ h, sims, queue } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());
afterEach(() => jest.restoreAllMocks());

const COAT = { skuId: '52001', quantity: 1, priceMinor: 18000, productName: 'WOOL COAT' };
const DAY_MS = 86_400_000;
const refundOf = async (order: SimOrder, ret: SimReturn) => (await h.store.getOrder(`ap21-${order.orderId}`))!.refunds[`ap21-${ret.returnId}`]!;
const paidBy = (ret: SimReturn) => sims.payoutsByReference().get(`ap21-${ret.returnId}`);
const timelineOf = async (order: SimOrder, ret: SimReturn) =>
  (await h.store.readTimeline(`ap21-${order.orderId}`)).filter((entry) => entry.refundId === `ap21-${ret.returnId}`);

function intake(overrides: { env?: Record<string, string>; now?: () => number } = {}): ReturnIntake {
  return h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings({ ...h.env, ...overrides.env }), ...(overrides.now && { now: overrides.now }) });
}

/** One poller pass (a fresh watermark, so every order of this era is read), then the dispatcher and the sweeper finish. */
async function pollAndDispatch(used: ReturnIntake = intake()) {
  const run = await h.poller({ settings: { watermark: `receipt-${++watermarks}` }, intake: used }).run();
  await settle();
  return run;
}

async function settle() {
  await queue.drained();
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

/** An order paid by a VISA card EPG knows, with one returned coat. */
function returnedCoat(): { order: SimOrder; ret: SimReturn } {
  const order = h.ap21.addOrder({ lines: [COAT] });
  const payment = order.payments[0]!;
  sims.addonPayments.seedTransaction(payment.stan!, { amount: { minor: payment.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  return { order, ret: h.ap21.addReturn(order.orderId, { lines: [{ skuId: COAT.skuId, quantity: -1 }] }) };
}

describe('card reversal on receipt (issue 15.4)', () => {
  it('sends no reversal until Ap21 shows the return received, and then exactly one', async () => {
    const { order, ret } = returnedCoat();
    expect((await pollAndDispatch()).outcomes).toEqual({ created: 1 });
    expect(await refundOf(order, ret)).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal', attempts: 0 });
    expect(paidBy(ret)).toBeUndefined();

    // Read again while Ap21 still shows it Processing: nothing moves, nothing is paid.
    expect((await pollAndDispatch()).outcomes).toEqual({ already_ingested: 1 });
    expect((await refundOf(order, ret)).state).toBe('awaiting_receipt');
    expect(paidBy(ret)).toBeUndefined();

    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    expect((await pollAndDispatch()).outcomes).toEqual({ received: 1 });
    expect(await refundOf(order, ret)).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(paidBy(ret)).toBe(1);

    // Read again once paid: nothing more.
    expect((await pollAndDispatch()).outcomes).toEqual({ already_ingested: 1 });
    expect(paidBy(ret)).toBe(1);
    const timeline = await timelineOf(order, ret);
    expect(timeline.map((entry) => [entry.event, entry.from, entry.to])).toEqual([
      ['refund_created', undefined, 'awaiting_receipt'],
      ['return_received', 'awaiting_receipt', 'reversal_pending'],
      ['reversal_submitted', 'reversal_pending', 'reversal_submitted'],
      ['reversal_succeeded', 'reversal_submitted', 'paid'],
    ]);
    expect(timeline[0]!.note).toContain('paid once Ap21 shows it received (status now Processing');
    expect(timeline[1]!.note).toContain('received (status Return Received)');
    expect(ledgerViolations((await h.store.getOrder(`ap21-${order.orderId}`))!)).toEqual([]);
  });

  it('pays at once a return Ap21 already shows received when it is first seen (status matched ignoring case and spaces)', async () => {
    const { order, ret } = returnedCoat();
    h.ap21.setReturnStatus(ret.returnId, ' COMPLETED ');
    expect((await pollAndDispatch()).outcomes).toEqual({ created: 1 });
    expect((await refundOf(order, ret)).state).toBe('paid');
    expect(paidBy(ret)).toBe(1);
  });

  it('holds only the providers the stage names: an EPG card pays when seen on a stage that waits for PayPro', async () => {
    const { order, ret } = returnedCoat();
    expect((await pollAndDispatch(intake({ env: { AP21_PAY_ON_RECEIPT: 'paypro' } }))).outcomes).toEqual({ created: 1 });
    expect((await refundOf(order, ret)).state).toBe('paid');
    expect(paidBy(ret)).toBe(1);
  });

  it('tells an operator when the wait runs out (manual review with the reason, ReturnsNotReceived), and a receipt seen later still pays once', async () => {
    const { order, ret } = returnedCoat();
    const emitted = jest.spyOn(metrics, 'emitMetric');
    // Seen two days ago on a stage that waits one day: the wait is over, and the sweeper finds it due.
    expect((await pollAndDispatch(intake({ now: () => Date.now() - 2 * DAY_MS }))).outcomes).toEqual({ created: 1 });
    const overdue = await refundOf(order, ret);
    expect(overdue).toMatchObject({ state: 'manual_review', reason: expect.stringMatching(new RegExp(`^${RECEIPT_OVERDUE_REASON} the stage's wait`)) });
    expect(emitted.mock.calls.filter(([name]) => name === 'ReturnsNotReceived')).toEqual([['ReturnsNotReceived', 1]]);
    expect(paidBy(ret)).toBeUndefined();
    const target = { name: 'test', tableName: 'refund-relay-test', store: h.store, claimWindowMs: 0, reversals: {}, ap21Poller: () => h.poller() } as OpsTarget;
    const review = await manualReview(target);
    expect(review.json).toEqual(expect.arrayContaining([expect.objectContaining({ refundId: overdue.id, reason: overdue.reason })]));

    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    expect((await pollAndDispatch()).outcomes).toEqual({ received: 1 });
    expect((await refundOf(order, ret)).state).toBe('paid');
    expect(paidBy(ret)).toBe(1);
    expect((await timelineOf(order, ret)).map((entry) => entry.event)).toEqual([
      'refund_created',
      'receipt_overdue',
      'return_received',
      'reversal_submitted',
      'reversal_succeeded',
    ]);
  });
});

describe('an Apace offer on receipt (issue 15.4)', () => {
  it('requests the offer only once the return is received, its expiry counted from then', async () => {
    const env = { AP21_PAY_ON_RECEIPT: 'apace', AP21_CARD_LAST_FOUR_FIELD: 'Reference' };
    const card = { origin: 'CreditCard', cardType: 'VISA', stan: `S-${Date.now()}`, reference: '************7001', amountMinor: COAT.priceMinor };
    const order = h.ap21.addOrder({ lines: [COAT], payments: [card] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: COAT.skuId, quantity: -1 }] });
    const offersFor = () => sims.apace.offers().filter((offer) => offer.merchantRefundId === `ap21-${ret.returnId}`);
    // Seen three hours ago (within the day's wait): no offer yet.
    expect((await pollAndDispatch(intake({ env, now: () => Date.now() - 3 * 3600_000 }))).outcomes).toEqual({ created: 1 });
    const waiting = await refundOf(order, ret);
    expect(waiting).toMatchObject({ state: 'awaiting_receipt', channel: 'apace' });
    expect(offersFor()).toEqual([]);

    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    expect((await pollAndDispatch(intake({ env }))).outcomes).toEqual({ received: 1 });
    const offered = await refundOf(order, ret);
    expect(offered).toMatchObject({ state: 'offered', channel: 'apace' });
    expect(offersFor()).toHaveLength(1);
    // Ten days from the receipt, not from when the return was first seen.
    expect(Date.parse(offered.offerExpiresAt!) - Date.parse(waiting.offerExpiresAt!)).toBeGreaterThan(2.9 * 3600_000);
  });
});

/** The store, except that its first `count` transitions are all held until the last of them is asked for. */
function writesTogether(store: OrderStore, count: number): OrderStore {
  const held: (() => void)[] = [];
  return new Proxy(store, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (name !== 'applyEvent') return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      return async (...args: Parameters<OrderStore['applyEvent']>) => {
        if (held.length < count) {
          await new Promise<void>((resolve) => {
            held.push(resolve);
            if (held.length === count) held.forEach((release) => release());
          });
        }
        return target.applyEvent(...args);
      };
    },
  });
}

describe('a receipt seen twice at once (issue 15.4)', () => {
  it('releases the refund once when the poller and a push see the receipt together, and pays once', async () => {
    const { order, ret } = returnedCoat();
    await pollAndDispatch();
    expect((await refundOf(order, ret)).state).toBe('awaiting_receipt');
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    const push = () =>
      fetch(`${h.stack.url}/ap21/returns`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', 'x-api-key': String(h.stack.secrets.ap21.pushApiKey) },
        body: `<?xml version="1.0" encoding="utf-8"?>${h.ap21.returnDocument(ret.returnId)}`,
      });
    const [polled, pushed] = await Promise.all([h.poller({ settings: { watermark: `receipt-${++watermarks}` }, intake: intake() }).run(), push()]);
    expect(pushed.status).toBe(202);
    await settle();
    // Whoever came second found the refund released already.
    expect(Object.keys(polled.outcomes).every((kind) => kind === 'received' || kind === 'already_ingested')).toBe(true);
    expect(paidBy(ret)).toBe(1);
    expect((await timelineOf(order, ret)).filter((entry) => entry.event === 'return_received')).toHaveLength(1);
  });

  it('of many readers holding the same snapshot of the waiting refund, exactly one releases it', async () => {
    const { order, ret } = returnedCoat();
    await pollAndDispatch();
    h.ap21.setReturnStatus(ret.returnId, 'Return Received');
    const client = h.client();
    const [ap21Order, ap21Return] = await Promise.all([
      client.getOrder(order.personId, order.orderId),
      client.getReturn(order.personId, order.orderId, ret.returnId),
    ]);
    // Every reader has read the refund awaiting its receipt before any of them writes.
    const readers = 6;
    const store = writesTogether(h.store, readers);
    const outcomes = await Promise.all(
      Array.from({ length: readers }, () => h.intake({ store, doorbell: queue, ledger: loadAp21LedgerSettings(h.env) }).ingest(ap21Order, ap21Return)),
    );
    expect(outcomes.map((outcome) => outcome.kind).sort()).toEqual([...Array<string>(readers - 1).fill('already_ingested'), 'received']);
    await settle();
    expect(paidBy(ret)).toBe(1);
    expect((await timelineOf(order, ret)).filter((entry) => entry.event === 'return_received')).toHaveLength(1);
  });
});

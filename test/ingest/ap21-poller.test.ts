import { ap21OriginOf, orderNumberKey } from '../../lambdas/domain/ap21-origin';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import type { OrderStore } from '../../lambdas/store/order-store';
import { BELT, SHIRT, refundsOf, startIngest, type IngestHarness } from '../support/harness/relay-with-ap21';

let h: IngestHarness;
let watermarks = 0;

beforeAll(async () => {
  // These tests count rows and pages of the list: they read a feed of orders only, and every
  // changed order's returns (AP21_POLL_RETURNS_READ=always, the mode for such installations).
  // test/ingest/ap21-returns-read.test.ts covers returns in the feed and on_sign.
  h = await startIngest({}, { returnsInFeed: false, returnsRead: 'always' });
});
afterAll(() => h.close());
beforeEach(() => {
  h.newEra();
  h.beforeAp21 = undefined;
  h.host.setFaults('ap21', { timeoutRate: 0, failureRate: 0, resetRate: 0 });
});

/** A watermark of its own per poller lineage, so tests do not resume each other's passes. */
const watermark = () => `test-${++watermarks}`;

/** `count` orders, each with one returned shirt; orders and returns interleave in time as in a store. */
function ordersWithReturns(count: number): { orders: SimOrder[]; returns: SimReturn[] } {
  const orders: SimOrder[] = [];
  const returns: SimReturn[] = [];
  for (let i = 0; i < count; i++) {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    orders.push(order);
    returns.push(h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] }));
  }
  return { orders, returns };
}

/** Exactly one refund per return, none for anything else. */
async function expectEachReturnRefundedOnce(orders: readonly SimOrder[], returns: readonly SimReturn[]): Promise<void> {
  const refunds = await refundsOf(h.store, orders);
  expect(refunds.map((refund) => refund.id).sort()).toEqual(returns.map((ret) => `ap21-${ret.returnId}`).sort());
  for (const order of orders) {
    const stored = await h.store.getOrder(`ap21-${order.orderId}`);
    const returnedShirts = returns
      .filter((ret) => ret.orderId === order.orderId)
      .reduce((sum, ret) => sum - (ret.lines.find((line) => line.skuId === SHIRT.skuId)?.quantity ?? 0), 0);
    const shirtLine = Object.values(stored?.lines ?? {}).find((line) => line.sku === SHIRT.skuId);
    expect(shirtLine ? shirtLine.reserved + shirtLine.refunded : 0).toBe(returnedShirts);
  }
}

/** The store, except that the named method throws (a crashing process) from its `after`-th call on. */
function crashing(store: OrderStore, method: keyof OrderStore, after: number): OrderStore {
  let calls = 0;
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (property !== method) return (value as (...args: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        if (++calls > after) throw new Error(`simulated crash in ${method}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('the Ap21 return poller', () => {
  it('ingests every return exactly once across two runs and a restart, and then moves the watermark', async () => {
    const { orders, returns } = ordersWithReturns(7);
    const name = watermark();
    const poller = h.poller({ settings: { watermark: name } });
    const first = await poller.run();
    expect(first).toMatchObject({ stop: 'caught_up', orders: 7, outcomes: { created: 7 } });
    await expectEachReturnRefundedOnce(orders, returns);

    returns.push(h.ap21.addReturn(orders[0]!.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] }));
    const second = await poller.run();
    expect(second.outcomes).toEqual({ created: 1, already_ingested: 7 });

    const restarted = await h.poller({ settings: { watermark: name } }).run();
    expect(restarted.outcomes).toEqual({ already_ingested: 8 });
    await expectEachReturnRefundedOnce(orders, returns);
    const mark = await h.store.getWatermark(name);
    expect(mark).toMatchObject({ version: 3 });
    expect(mark?.cursor).toBeUndefined();
    expect(Date.parse(mark!.at)).toBeGreaterThan(h.clock() - 5_000);
  });

  it('turns a return into the refund its order line pays for, on the route the stage allows', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    await h.poller({ settings: { watermark: watermark() } }).run();
    const stored = (await h.store.getOrder(`ap21-${order.orderId}`))!;
    const payment = order.payments[0]!;
    expect(stored.payments[payment.paymentId]).toMatchObject({
      provider: 'addon_payments',
      transactionId: payment.stan,
      reference: payment.reference,
      capturedMinor: 16480,
      reservedMinor: 5990,
    });
    expect(stored.payments[payment.paymentId]!.cardLastFour).toBeUndefined();
    expect(stored.refunds[`ap21-${ret.returnId}`]).toMatchObject({
      state: 'reversal_pending',
      channel: 'reversal',
      lines: { [order.lines[0]!.lineId]: 1 },
      amount: { minor: 5990, currency: 'AUD' },
      paymentId: payment.paymentId,
      source: { kind: 'ap21_return', ref: ret.returnId },
      refs: { ap21ReturnId: ret.returnId, ap21ReturnNumber: ret.orderNumber },
    });
    expect(stored.dueAt).toBeDefined();
  });

  it("opens the ledger of every order it reads, returns or not, so Refundid's order fetch finds it by order number", async () => {
    const quiet = h.ap21.addOrder({ lines: [SHIRT, BELT], email: 'customer@example.com' });
    const negative = h.ap21.addOrder({ lines: [{ ...BELT, quantity: -1 }] });
    expect(await h.poller({ settings: { watermark: watermark() } }).run()).toMatchObject({ stop: 'caught_up', orders: 2, outcomes: {} });
    const opened = (await h.store.getOrder(`ap21-${quiet.orderId}`))!;
    expect(opened).toMatchObject({ currency: 'AUD', customer: { email: 'customer@example.com' }, refunds: {} });
    expect(Object.keys(opened.lines).sort()).toEqual(quiet.lines.map((line) => line.lineId).sort());
    expect(ap21OriginOf(opened)).toEqual({ personId: quiet.personId, orderId: quiet.orderId, orderNumber: quiet.orderNumber });
    expect(await h.store.findReference('order_number', orderNumberKey(quiet.orderNumber))).toEqual({ orderId: `ap21-${quiet.orderId}` });
    // A negative order sold nothing: there is no ledger to open.
    expect(await h.store.getOrder(`ap21-${negative.orderId}`)).toBeUndefined();
  });

  it('misses no order when others are updated while it pages: rows that slip past are found by reading the list again', async () => {
    const { orders, returns } = ordersWithReturns(8);
    let listings = 0;
    h.beforeAp21 = (request) => {
      if (request.path.replace(/\/+$/, '') !== '/Orders' || ++listings !== 2) return;
      // Between the first and second page, the first two orders change: every later row moves up two.
      h.ap21.touchOrder(orders[0]!.orderId);
      returns.push(h.ap21.addReturn(orders[1]!.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] }));
    };
    const name = watermark();
    const first = await h.poller({ settings: { watermark: name, pageRows: 3, pageOverlap: 1 } }).run();
    expect(first.stop).toBe('caught_up');
    // Order 3 moved up past the second page's overlap; 7 orders read for 8 rows sends the poller back to row 1.
    const startRows = h.ap21
      .calls('GET /Orders')
      .slice(-first.pages)
      .map((call) => Number(call.query.startRow));
    expect(startRows).toEqual([1, 3, 5, 7, 1, 3, 5, 7]);
    expect(first).toMatchObject({ sweeps: 1, orders: 8 });
    // Every return that existed when the pass started is in; the one added mid-pass may wait for the next.
    const beforePass = returns.slice(0, 8).map((ret) => `ap21-${ret.returnId}`);
    expect((await refundsOf(h.store, orders)).map((refund) => refund.id)).toEqual(expect.arrayContaining(beforePass));
    await h.poller({ settings: { watermark: name } }).run();
    await expectEachReturnRefundedOnce(orders, returns);
  });

  it('stays exact under random updates during paging, for any page size and overlap', async () => {
    const random = seeded(20260115);
    for (let scenario = 0; scenario < 4; scenario++) {
      h.newEra();
      const pageRows = 2 + Math.floor(random() * 4);
      const pageOverlap = 1 + Math.floor(random() * (pageRows - 1));
      const { orders, returns } = ordersWithReturns(5 + Math.floor(random() * 6));
      h.beforeAp21 = () => {
        if (random() < 0.5) h.ap21.touchOrder(orders[Math.floor(random() * orders.length)]!.orderId);
        if (random() < 0.15)
          returns.push(h.ap21.addReturn(orders[Math.floor(random() * orders.length)]!.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] }));
      };
      const name = watermark();
      const poller = h.poller({ settings: { watermark: name, pageRows, pageOverlap } });
      const existing = returns.slice(0, orders.length).map((ret) => `ap21-${ret.returnId}`);
      await poller.run();
      expect((await refundsOf(h.store, orders)).map((refund) => refund.id)).toEqual(expect.arrayContaining(existing));
      h.beforeAp21 = undefined;
      await poller.run();
      // A second return of the belt (one bought) cannot be refunded: it waits for an operator instead.
      const refundable = returns.filter(
        (ret, i) => i < orders.length || returns.findIndex((other) => other.orderId === ret.orderId && other.lines[0]!.skuId === BELT.skuId) === i,
      );
      await expectEachReturnRefundedOnce(orders, refundable);
    }
  });

  it('loses and duplicates nothing when it crashes mid-page, whether or not it saved where it was', async () => {
    const { orders, returns } = ordersWithReturns(7);
    const name = watermark();
    // A new order's return is booked with the order itself, in one write (openOrderWithRefund).
    await expect(h.poller({ settings: { watermark: name }, store: crashing(h.store, 'openOrderWithRefund', 4) }).run()).rejects.toThrow(
      'simulated crash in openOrderWithRefund',
    );
    expect(await h.store.getWatermark(name)).toMatchObject({ cursor: { startRow: 4 } });
    expect(await h.poller({ settings: { watermark: name } }).run()).toMatchObject({ stop: 'caught_up', outcomes: { created: 3 } });
    await expectEachReturnRefundedOnce(orders, returns);

    h.newEra();
    const more = ordersWithReturns(5);
    const hard = watermark();
    const dying = crashing(crashing(h.store, 'openOrderWithRefund', 2), 'advanceWatermark', 0);
    await expect(h.poller({ settings: { watermark: hard }, store: dying }).run()).rejects.toThrow('simulated crash in openOrderWithRefund');
    expect(await h.store.getWatermark(hard)).toBeUndefined();
    await h.poller({ settings: { watermark: hard } }).run();
    await expectEachReturnRefundedOnce(more.orders, more.returns);
  });

  it('loses and duplicates nothing when it crashes after the last page, before the watermark write', async () => {
    const { orders, returns } = ordersWithReturns(4);
    const name = watermark();
    await expect(h.poller({ settings: { watermark: name }, store: crashing(h.store, 'advanceWatermark', 0) }).run()).rejects.toThrow(
      'simulated crash in advanceWatermark',
    );
    expect(await h.store.getWatermark(name)).toBeUndefined();
    expect((await h.poller({ settings: { watermark: name } }).run()).outcomes).toEqual({ already_ingested: 4 });
    await expectEachReturnRefundedOnce(orders, returns);
  });

  it('stops on Ap21 5xx and timeouts it cannot retry without moving the watermark, and the next run finishes the pass', async () => {
    const { orders, returns } = ordersWithReturns(6);
    const name = watermark();
    // A Retry-After beyond the run's time budget ends the run at once.
    h.ap21.injectFailures(1, { status: 503, retryAfterSeconds: 30 });
    expect(await h.poller({ settings: { watermark: name } }).run()).toMatchObject({ stop: 'ap21_unavailable', pages: 0, retries: 0 });

    let returnLists = 0;
    h.beforeAp21 = (request) => {
      if (request.path.endsWith('/Returns') && ++returnLists === 3) h.ap21.injectFailures(3, { status: 500 });
    };
    const interrupted = await h.poller({ settings: { watermark: name } }).run();
    expect(interrupted).toMatchObject({ stop: 'ap21_unavailable', outcomes: { created: 2 }, retries: 2 });
    const saved = await h.store.getWatermark(name);
    expect(saved?.cursor).toMatchObject({ startRow: 2, seen: [orders[0]!.orderId, orders[1]!.orderId] });

    h.beforeAp21 = undefined;
    h.host.setFaults('ap21', { timeoutRate: 1, hangMs: 400 });
    expect(await h.poller({ settings: { watermark: name }, client: h.client({ AP21_TIMEOUT_MS: '150' }) }).run()).toMatchObject({ stop: 'ap21_unavailable' });
    expect((await h.store.getWatermark(name))?.at).toBe(saved?.at);

    h.host.setFaults('ap21', { timeoutRate: 0 });
    expect(await h.poller({ settings: { watermark: name } }).run()).toMatchObject({ stop: 'caught_up' });
    await expectEachReturnRefundedOnce(orders, returns);
  });

  it('bounds each run by pages and by time, and resumes where the last run stopped', async () => {
    const { orders, returns } = ordersWithReturns(10);
    const name = watermark();
    const stops = [];
    for (let run = 0; run < 10 && stops.at(-1) !== 'caught_up'; run++) stops.push((await h.poller({ settings: { watermark: name, maxPages: 2 } }).run()).stop);
    expect(stops).toEqual(['bounded', 'bounded', 'caught_up']);
    await expectEachReturnRefundedOnce(orders, returns);

    h.newEra();
    const timed = ordersWithReturns(3);
    const slow = watermark();
    const timedStops = [];
    // A budget of 1 ms still moves one order per run.
    for (let run = 0; run < 10 && timedStops.at(-1) !== 'caught_up'; run++)
      timedStops.push((await h.poller({ settings: { watermark: slow, maxDurationMs: 1 } }).run()).stop);
    expect(timedStops.at(-1)).toBe('caught_up');
    expect(timedStops.length).toBeGreaterThan(1);
    await expectEachReturnRefundedOnce(timed.orders, timed.returns);
  });

  it('never calls Ap21 faster than AP21_MAX_CALLS_PER_SECOND', async () => {
    ordersWithReturns(5);
    const before = h.ap21.calls().length;
    await h.poller({ settings: { watermark: watermark() }, client: h.client({ AP21_MAX_CALLS_PER_SECOND: '20' }) }).run();
    const arrivals = h.ap21
      .calls()
      .slice(before)
      .map((call) => call.at);
    expect(arrivals.length).toBeGreaterThanOrEqual(7);
    // The limiter spaces sends 50 ms apart; arrivals at the server can bunch by a scheduling delay
    // on a loaded machine, so every 4 gaps in a row (not each one) must span the limit's 200 ms.
    const spans = arrivals.slice(4).map((at, i) => at - arrivals[i]!);
    expect(Math.min(...spans)).toBeGreaterThanOrEqual(4 * 50 - 40);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual((arrivals.length - 1) * 50 - 10);
  });

  it('loses a race for the watermark to another poller without moving it backwards', async () => {
    const { orders, returns } = ordersWithReturns(3);
    const name = watermark();
    const [a, b] = await Promise.all([h.poller({ settings: { watermark: name } }).run(), h.poller({ settings: { watermark: name } }).run()]);
    expect([a.stop, b.stop].sort()).toEqual(['caught_up', 'lost_race']);
    expect((await h.store.getWatermark(name))?.version).toBe(1);
    await expectEachReturnRefundedOnce(orders, returns);
  });
});

/** A small deterministic PRNG (mulberry32), so a failing scenario can be replayed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

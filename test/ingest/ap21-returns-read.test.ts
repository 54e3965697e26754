import { parseXml } from '../../lambdas/commons/xml';
import { orderDocument } from '../../simulators/ap21/documents';
import { readOrder, type Ap21Order } from '../../lambdas/providers/ap21/schemas';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { Ap21Poller, type Ap21PollerSettings } from '../../lambdas/services/ap21-poller';
import { isReturnInFeed, originalsNamedBy, returnSignsOf } from '../../lambdas/services/ap21-returns-read';
import { BELT, POLL_SETTINGS, SHIRT, refundsOf, startIngest, type IngestHarness } from '../support/harness/relay-with-ap21';

const context = { currency: 'AUD', timeZone: 'UTC', version: 4 };

const sold: SimOrder = {
  orderId: '20784',
  personId: '3583',
  orderNumber: 'W0020784',
  lines: [
    { lineId: '56025', skuId: '21503', quantity: 2, priceMinor: 5990 },
    { lineId: '56026', skuId: '880', quantity: 1, priceMinor: 4500 },
  ],
  payments: [{ paymentId: '2791', origin: 'CreditCard', cardType: 'VISA', stan: '986516', amountMinor: 16480 }],
  orderedAt: Date.parse('2026-03-04T01:22:10Z'),
  updatedAt: Date.parse('2026-03-04T01:22:10Z'),
};

/** The order as the changed-orders list carries it, with `edit` applied to its XML first. */
function feedOrder(order: SimOrder, edit: (xml: string) => string = (xml) => xml): Ap21Order {
  return readOrder(parseXml(edit(orderDocument(order, 1, undefined, context))), { currency: 'AUD', timeZone: 'UTC' });
}

describe('signs of a return in an order of the changed-orders feed', () => {
  it('finds none on an order that only sells and is on its way (the guide’s full document, every element)', () => {
    expect(returnSignsOf(feedOrder(sold))).toEqual([]);
    for (const status of ['Shipped', 'Despatched', 'Cancelled', 'Completed', ' processing '])
      expect(returnSignsOf(feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', `<Status>${status}</Status>`)))).toEqual([]);
  });

  it('reads a Returned line status, and any status it does not know, as a sign (when in doubt, read)', () => {
    const returned = feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', '<Status>Returned</Status>'));
    expect(returnSignsOf(returned)).toEqual(['a line with status "returned"']);
    const unknown = feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', '<Status>Partly Exchanged</Status>'));
    expect(returnSignsOf(unknown)).toEqual(['a line with status "partly exchanged"']);
  });

  it('reads a returned quantity or a return authorisation with a value as a sign, and ignores NonReturnable and empty or zero ones', () => {
    const quantity = feedOrder(sold, (xml) => xml.replace('<Status>Processing</Status>', '<Status>Processing</Status><QuantityReturned>1</QuantityReturned>'));
    expect(returnSignsOf(quantity)).toEqual(['OrderDetail/QuantityReturned filled in']);
    const authorised = feedOrder(sold, (xml) => xml.replace('</Order>', '<ReturnAuthorisationNumber>6026</ReturnAuthorisationNumber></Order>'));
    expect(returnSignsOf(authorised)).toEqual(['ReturnAuthorisationNumber filled in']);
    const nothing = feedOrder(sold, (xml) =>
      xml
        .replace('<Status>Processing</Status>', '<Status>Processing</Status><QuantityReturned>0</QuantityReturned><RefundedValue>0.00</RefundedValue>')
        .replace('</Order>', '<ReturnAuthorisationNumber /></Order>'),
    );
    expect(nothing.lines[0]?.quantity).toBe(2);
    expect(returnSignsOf(nothing)).toEqual([]);
  });

  it('reads a credit (a negative payment) and a line giving units back as signs', () => {
    const credited = feedOrder({ ...sold, payments: [...sold.payments, { paymentId: '2792', origin: 'CreditCard', amountMinor: -5990 }] });
    expect(returnSignsOf(credited)).toEqual(['a payment with a negative amount (a credit)']);
    const exchanged = feedOrder({ ...sold, lines: [...sold.lines, { lineId: '56027', skuId: '21504', quantity: -1, priceMinor: 5990 }] });
    expect(returnSignsOf(exchanged)).toContain('a line with a negative quantity');
    expect(isReturnInFeed(exchanged)).toBe(false);
  });

  it('knows a return in the feed by its negative lines, and the original it names; a Refundid negative order is not one', () => {
    const ret = feedOrder({
      ...sold,
      orderId: '62347',
      orderNumber: 'W0020784-R1',
      lines: [{ lineId: '56030', skuId: '21503', quantity: -1, priceMinor: 5990 }],
      payments: [],
      origOrderNumber: 'W0020784',
    });
    expect(isReturnInFeed(ret)).toBe(true);
    expect([...originalsNamedBy([feedOrder(sold), ret])]).toEqual(['w0020784']);
    const refundid = feedOrder({
      ...sold,
      orderId: '20790',
      orderNumber: 'W0020790',
      lines: [{ lineId: '56031', skuId: '21503', quantity: -1, priceMinor: 5990 }],
      payments: [{ paymentId: '2793', merchantId: 'Refundid', cardType: 'Refundid', amountMinor: -5990 }],
      origOrderNumber: 'W0020784',
    });
    expect(isReturnInFeed(refundid)).toBe(false);
    expect([...originalsNamedBy([refundid])]).toEqual([]);
  });
});

/**
 * The poller against the Ap21 simulator over HTTP and dynalite: a feed that lists returns (as Ap21
 * does) and one that does not (an installation for `always`, or one whose orders show a sign).
 */
describe('the poller reads returns where the feed shows them', () => {
  let feed: IngestHarness;
  let watermarks = 0;

  beforeAll(async () => {
    feed = await startIngest();
  });
  afterAll(() => feed.close());
  beforeEach(() => {
    feed.newEra();
    feed.ap21.listReturnsInFeed(true);
  });

  /** The same Ap21, playing an installation whose feed lists no returns. */
  const bareFeed = () => {
    feed.ap21.listReturnsInFeed(false);
    return feed;
  };

  /** A poller of its own watermark; `signsOff` turns sign detection off (the controls). */
  function poller(h: IngestHarness, settings: Partial<Ap21PollerSettings> = {}, signsOff = false): Ap21Poller {
    return new Ap21Poller({
      client: h.client(),
      store: h.store,
      intake: h.intake(),
      settings: { ...POLL_SETTINGS, watermark: `returns-read-${++watermarks}`, pageRows: 50, ...settings },
      now: () => h.clock(),
      ...(signsOff && { returnSigns: () => [], followReturnsInFeed: false }),
    });
  }

  /** Five orders, the third with a returned shirt. */
  function fiveOrdersOneReturn(h: IngestHarness) {
    const orders = Array.from({ length: 5 }, () => h.ap21.addOrder({ lines: [SHIRT, BELT] }));
    const ret = h.ap21.addReturn(orders[2]!.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    return { orders, ret };
  }

  const refundIds = async (h: IngestHarness, orders: Parameters<typeof refundsOf>[1]) => (await refundsOf(h.store, orders)).map((refund) => refund.id).sort();
  const calls = (h: IngestHarness, endpoint: string) => h.ap21.calls(endpoint).length;

  it('with returns in the feed, on_sign reads the returns of the returned order only and ingests the return; always reads every order', async () => {
    const { orders, ret } = fiveOrdersOneReturn(feed);
    const before = calls(feed, 'GET /Persons/{pid}/Orders/{oid}/Returns');
    const run = await poller(feed).run();
    expect(run).toMatchObject({ stop: 'caught_up', orders: 6, outcomes: { created: 1 } });
    expect(calls(feed, 'GET /Persons/{pid}/Orders/{oid}/Returns') - before).toBe(1);
    expect(await refundIds(feed, orders)).toEqual([`ap21-${ret.returnId}`]);
    // Every order's ledger is open all the same, from the order as the feed carries it.
    for (const order of orders) expect(await feed.store.getOrder(`ap21-${order.orderId}`)).toBeDefined();

    const again = calls(feed, 'GET /Persons/{pid}/Orders/{oid}/Returns');
    expect(await poller(feed, { returnsRead: 'always' }).run()).toMatchObject({ outcomes: { already_ingested: 1 } });
    expect(calls(feed, 'GET /Persons/{pid}/Orders/{oid}/Returns') - again).toBe(6);
  });

  /** A return whose order is not listed again (older than the window): only the return itself is in the feed. */
  function returnOnlyInFeed(h: IngestHarness): { original: SimOrder; ret: SimReturn } {
    const original = h.ap21.addOrder({ lines: [SHIRT, BELT], updatedAt: h.clock() - 3 * 24 * 3600_000 });
    const ret = h.ap21.addReturn(original.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });
    h.ap21.order(original.orderId)!.updatedAt = h.clock() - 3 * 24 * 3600_000;
    return { original, ret };
  }

  it('ingests a return present only in the feed, finding its order by OrigOrderNum', async () => {
    const { original, ret } = returnOnlyInFeed(feed);
    // Lookups of the original order by its number (the intake also asks once for the exchange order the return names).
    const originalLookups = () => feed.ap21.calls('GET /OrderNumbers/{n}').filter((call) => call.path.endsWith(`/${original.orderNumber}`)).length;
    const lookups = originalLookups();
    expect(await poller(feed).run()).toMatchObject({ stop: 'caught_up', orders: 1, outcomes: { created: 1 } });
    expect(originalLookups() - lookups).toBe(1);
    expect(await refundIds(feed, [original])).toEqual([`ap21-${ret.returnId}`]);
  });

  it('CONTROL: with sign detection off, that return is never ingested', async () => {
    const { original } = returnOnlyInFeed(feed);
    expect(await poller(feed, {}, true).run()).toMatchObject({ stop: 'caught_up', orders: 1 });
    expect(await refundIds(feed, [original])).toEqual([]);
  });

  it('without returns in the feed, always ingests every return; on_sign ingests one whose order shows a Returned line', async () => {
    const bare = bareFeed();
    const { orders, ret } = fiveOrdersOneReturn(bare);
    expect(await poller(bare, { returnsRead: 'always' }).run()).toMatchObject({ stop: 'caught_up', orders: 5, outcomes: { created: 1 } });
    expect(await refundIds(bare, orders)).toEqual([`ap21-${ret.returnId}`]);

    const marked = fiveOrdersOneReturn(bare);
    bare.ap21.setLineStatus(marked.orders[2]!.orderId, SHIRT.skuId, 'Returned');
    const before = calls(bare, 'GET /Persons/{pid}/Orders/{oid}/Returns');
    // A fresh watermark lists the first five again: their return is in, and they show no sign.
    expect(await poller(bare).run()).toMatchObject({ stop: 'caught_up', orders: 10, outcomes: { created: 1 } });
    expect(calls(bare, 'GET /Persons/{pid}/Orders/{oid}/Returns') - before).toBe(1);
    expect(await refundIds(bare, marked.orders)).toEqual([`ap21-${marked.ret.returnId}`]);
  });

  it('CONTROL: with sign detection off, the return of the order showing a Returned line is missed', async () => {
    const bare = bareFeed();
    const { orders } = fiveOrdersOneReturn(bare);
    bare.ap21.setLineStatus(orders[2]!.orderId, SHIRT.skuId, 'Returned');
    expect(await poller(bare, {}, true).run()).toMatchObject({ stop: 'caught_up', orders: 5 });
    expect(await refundIds(bare, orders)).toEqual([]);
  });

  it('sets aside a return in the feed whose order Ap21 sends wrong, and ingests it once the order is corrected, though the return is not listed again', async () => {
    const { original, ret } = returnOnlyInFeed(feed);
    feed.ap21.corruptOrder(original.orderId, 'empty_value', feed.clock() - 3 * 24 * 3600_000);
    const name = `returns-read-${++watermarks}`;
    expect(await poller(feed, { watermark: name }).run()).toMatchObject({ stop: 'caught_up', outcomes: { isolated: 1 } });
    const [held] = (await feed.store.listIsolations('ap21')).filter((isolation) => isolation.subject === `return-in-feed:${ret.returnId}`);
    expect(held).toMatchObject({ attributes: { orderNumber: original.orderNumber, returnOrderId: ret.returnId } });
    expect(held?.reason).toMatch(/cannot be read from Ap21/);

    // Corrected, the order is listed again; the return, unchanged, is not once the window has passed
    // it (played here by leaving returns out of the feed): the return set aside is the sign.
    feed.ap21.corruptOrder(original.orderId, undefined);
    feed.ap21.listReturnsInFeed(false);
    expect(await poller(feed, { watermark: name }).run()).toMatchObject({ stop: 'caught_up', orders: 1, outcomes: { created: 1 } });
    expect(await refundIds(feed, [original])).toEqual([`ap21-${ret.returnId}`]);
    expect((await feed.store.listIsolations('ap21')).filter((isolation) => isolation.subject === `return-in-feed:${ret.returnId}`)).toEqual([]);
  });
});

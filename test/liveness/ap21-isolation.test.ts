import { parseXml } from '../../lambdas/commons/xml';
import { toAp21DateTime } from '../../lambdas/providers/ap21/schemas';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { Ap21UnprocessableError } from '../../lambdas/services/ap21-poller';
import { runOps } from '../../tools/ops/cli';
import { AP21_CREDENTIALS } from '../support/harness/relay-with-ap21';
import { capturingMetrics, startLivenessWorld, type LivenessWorld } from '../support/harness/relay-with-ap21-and-epg';

/**
 * Liveness of Ap21 ingestion (docs/design.md §2.5): one order Ap21 refuses and one it sends wrong,
 * in the same page as ordinary ones, and a page of 50 real-sized orders. Each case ends with every
 * return refunded exactly once (paid at EPG) or set aside for an operator with a reason, and
 * nothing else; each has a control showing the case fails with the fix turned off.
 */
let world: LivenessWorld;
let watermarks = 0;

beforeAll(async () => {
  // The counts below are per changed order, as a feed of orders only lists them, every order's
  // returns read (AP21_POLL_RETURNS_READ=always). A return in the feed whose original cannot be read
  // is set aside too: test/ingest/ap21-returns-read.test.ts.
  world = await startLivenessWorld(undefined, { returnsInFeed: false, returnsRead: 'always' });
});
afterAll(() => world.close());
beforeEach(() => world.newEra());

const watermark = () => `liveness-${++watermarks}`;

/** `npm run ops -- …` in process, against this world's table. */
async function ops(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runOps(
    argv,
    { out: (text) => (out += `${text}\n`), err: (text) => (out += `${text}\n`) },
    { env: process.env, now: () => new Date(world.clock()) },
  );
  return { code, out };
}

/** The refund of each return, paid exactly once at EPG; no other refund on these orders. */
async function expectPaidOnce(orders: readonly SimOrder[], returns: readonly SimReturn[]): Promise<void> {
  const refunds = await world.refundsOf(orders);
  expect(refunds.map((refund) => refund.id).sort()).toEqual(returns.map((ret) => `ap21-${ret.returnId}`).sort());
  for (const refund of refunds) {
    expect({ refund: refund.id, state: refund.state }).toEqual({ refund: refund.id, state: 'paid' });
    expect({ refund: refund.id, payouts: world.epg.payouts().get(refund.id) }).toEqual({ refund: refund.id, payouts: 1 });
  }
}

describe('an order Ap21 refuses and an order it sends wrong, in a page of ordinary ones', () => {
  /** Eight orders with a return each; the third's returns are refused (403, API error 5087), the sixth has an empty <Value/>. */
  function scenario() {
    const { orders, returns } = world.ordersWithReturns(8, 3);
    const refused = orders[2]!;
    const malformed = orders[5]!;
    // As `npm start` users do it: POST /_sim/seed/ap21 {"refuseReturns": …}.
    world.ap21.seed({ refuseReturns: { orderId: refused.orderId, failure: { status: 403, code: 5087 } } });
    world.ap21.corruptOrder(malformed.orderId, 'empty_value', malformed.updatedAt);
    const ordinary = <T extends { orderId: string }>(list: readonly T[]) =>
      list.filter((entry) => entry.orderId !== refused.orderId && entry.orderId !== malformed.orderId);
    return { orders, returns, refused, malformed, ordinary };
  }

  it('refunds the ordinary returns, sets the two aside once with their reasons, moves the watermark, and retries each when it changes', async () => {
    const { orders, returns, refused, malformed, ordinary } = scenario();
    const name = watermark();
    const poller = world.poller({ settings: { watermark: name, pageRows: 10 } });

    const first = await capturingMetrics(() => poller.run());
    expect(first.result).toMatchObject({ stop: 'caught_up', pages: 1, orders: 8, outcomes: { created: 6, isolated: 2 }, isolationsOpen: 2 });
    expect((await world.store.getWatermark(name))?.cursor).toBeUndefined();
    expect(first.metrics).toMatchObject({ Ap21OrdersIsolated: [1, 1], RefundsInManualReview: [1, 1], Ap21IsolationsOpen: [2] });
    expect(first.metrics.PollerLagSeconds).toHaveLength(1);
    expect((await world.refundsOf(orders)).map((refund) => refund.id).sort()).toEqual(
      ordinary(returns)
        .map((ret) => `ap21-${ret.returnId}`)
        .sort(),
    );

    // What an operator sees: both, with the reason and the raw data.
    const listed = JSON.parse((await ops(['manual-review', '--json'])).out) as { kind: string; subject: string; reason: string }[];
    const isolated = listed.filter((entry) => entry.kind === 'ap21_isolation' && [refused, malformed].some((order) => entry.subject.endsWith(order.orderId)));
    expect(isolated).toHaveLength(2);
    expect(isolated).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ subject: `returns:${refused.orderId}`, reason: expect.stringMatching(/HTTP 403, API error 5087/) as string }),
        expect.objectContaining({ subject: `order:${malformed.orderId}`, reason: expect.stringMatching(/lines\.0\.Value/) as string }),
      ]),
    );
    expect((await ops(['manual-review'])).out).toMatch(
      new RegExp(`returns:${refused.orderId} +${refused.orderId} +${refused.orderNumber} +Ap21 could not give`),
    );
    expect((await world.isolations(orders)).find((isolation) => isolation.subject === `order:${malformed.orderId}`)?.raw).toContain('<Value/>');

    // Read again unchanged (the next run's overlap lists the whole page again): nothing recorded twice.
    const again = await capturingMetrics(() => world.poller({ settings: { watermark: name, pageRows: 10 } }).run());
    expect(again.result).toMatchObject({ stop: 'caught_up', outcomes: { already_ingested: 6, isolated: 2 } });
    expect(again.metrics.Ap21OrdersIsolated).toBeUndefined();
    expect(again.metrics.RefundsInManualReview).toBeUndefined();

    // Both change in Ap21: the refusal is lifted (any change of the order lists it again), the value corrected.
    world.ap21.refuseReturnsOf(refused.orderId, undefined);
    world.ap21.touchOrder(refused.orderId);
    world.ap21.corruptOrder(malformed.orderId, undefined);
    const retried = await world.poller({ settings: { watermark: name, pageRows: 10 } }).run();
    expect(retried).toMatchObject({ stop: 'caught_up', outcomes: { created: 2 }, isolationsOpen: 0 });
    expect(await world.isolations(orders)).toEqual([]);

    await world.dispatch(orders, 20_000);
    await expectPaidOnce(orders, returns);
  });

  it('lets an operator retry a set-aside order by hand with npm run ops -- retry-ap21', async () => {
    const { orders, returns, refused, malformed } = scenario();
    const name = watermark();
    await world.poller({ settings: { watermark: name, pageRows: 10 } }).run();

    // Still refused: the retry says so, and the order stays set aside.
    const stillRefused = await ops(['retry-ap21', refused.orderId]);
    expect(stillRefused).toMatchObject({
      code: 2,
      out: expect.stringMatching(new RegExp(`still set aside:\\n  returns:${refused.orderId}: .*5087`)) as string,
    });

    world.ap21.refuseReturnsOf(refused.orderId, undefined);
    const done = await ops(['retry-ap21', refused.orderId]);
    expect(done).toMatchObject({ code: 0, out: expect.stringMatching(/created 1; released 1; nothing left set aside/) as string });
    expect((await world.isolations(orders)).map((isolation) => isolation.subject)).toEqual([`order:${malformed.orderId}`]);
    const retried = returns.find((ret) => ret.orderId === refused.orderId)!;
    expect((await world.refundsOf([refused])).map((refund) => refund.id)).toEqual([`ap21-${retried.returnId}`]);
    // The malformed one can only go through once Ap21 corrects it.
    world.ap21.corruptOrder(malformed.orderId, undefined);
    expect((await ops(['retry-ap21', '--all'])).code).toBe(0);
    expect(await world.isolations(orders)).toEqual([]);

    await world.dispatch(orders, 20_000);
    await expectPaidOnce(orders, returns);
  });

  it('CONTROL: stopping at what cannot be processed (the poller before isolation) never moves the watermark and strands every later return', async () => {
    const { orders, returns, refused } = scenario();
    const name = watermark();
    for (let run = 0; run < 3; run++) {
      const { metrics } = await capturingMetrics(() =>
        expect(world.poller({ settings: { watermark: name, pageRows: 10 }, unprocessable: 'halt' }).run()).rejects.toBeInstanceOf(Ap21UnprocessableError),
      );
      // A failing run still says how far behind it is: the lag alarm sees the stall, not silence.
      expect(metrics.PollerLagSeconds).toHaveLength(1);
    }
    const mark = await world.store.getWatermark(name);
    // Stuck at the refused order, every run: the cursor never passes it and the watermark never moves.
    expect(mark?.cursor).toMatchObject({ seen: orders.slice(0, 2).map((order) => order.orderId) });
    expect(mark?.version).toBe(3);
    expect(Date.parse(mark!.at)).toBeLessThan(Date.parse(mark!.cursor!.startedAt));
    const refunded = (await world.refundsOf(orders)).map((refund) => refund.id);
    expect(refunded.sort()).toEqual(
      returns
        .slice(0, 2)
        .map((ret) => `ap21-${ret.returnId}`)
        .sort(),
    );
    expect(returns.filter((ret) => ret.orderId !== refused.orderId && !refunded.includes(`ap21-${ret.returnId}`))).toHaveLength(5);
  });
});

describe('what Ap21 sends wrong', () => {
  it('is accepted where money does not depend on it, and set aside where it does, order by order', async () => {
    const { orders, returns } = world.ordersWithReturns(6, 2);
    const kinds = ['price_precision', 'long_product_name', 'unknown_elements', 'unknown_currency', 'value_precision', undefined] as const;
    orders.forEach((order, i) => kinds[i] && world.ap21.corruptOrder(order.orderId, kinds[i], order.updatedAt));
    const run = await world.poller({ settings: { watermark: watermark(), pageRows: 10 } }).run();
    expect(run).toMatchObject({ stop: 'caught_up', orders: 6, outcomes: { created: 4, isolated: 2 } });
    const reasons = Object.fromEntries((await world.isolations(orders)).map((isolation) => [isolation.subject, isolation.reason]));
    expect(reasons).toEqual({
      [`order:${orders[3]!.orderId}`]: expect.stringMatching(/not an ISO 4217 currency code: QQQ/) as string,
      [`order:${orders[4]!.orderId}`]: expect.stringMatching(/more precision than AUD allows/) as string,
    });
    // A product name beyond what we keep is cut, not a reason to refuse the order.
    const title = Object.values((await world.store.getOrder(`ap21-${orders[1]!.orderId}`))!.lines)[0]!.title;
    expect(title).toHaveLength(256);
    expect((await world.refundsOf(orders)).map((refund) => refund.id).sort()).toEqual([0, 1, 2, 5].map((i) => `ap21-${returns[i]!.returnId}`).sort());
  });

  it('reads a page one order at a time when one order makes the whole page unreadable, and sets aside only that order', async () => {
    const { orders, returns } = world.ordersWithReturns(5, 2);
    const broken = orders[1]!;
    world.ap21.corruptOrder(broken.orderId, 'broken_xml', broken.updatedAt);
    const before = world.ap21.calls('GET /Orders').length;
    const run = await world.poller({ settings: { watermark: watermark(), pageRows: 10 } }).run();
    expect(run).toMatchObject({ stop: 'caught_up', orders: 5, outcomes: { created: 4, isolated: 1 } });
    // The whole page once, then each of its five rows.
    expect(world.ap21.calls('GET /Orders').length - before).toBe(6);
    const [isolation] = await world.isolations(orders);
    expect(isolation).toMatchObject({
      subject: `order:${broken.orderId}`,
      reason: expect.stringMatching(/unreadable XML: bare & in text/) as string,
      raw: expect.stringContaining('Smith & Sons') as string,
      attributes: { ap21OrderId: broken.orderId, personId: broken.personId },
    });
    expect((await world.refundsOf(orders)).map((refund) => refund.id).sort()).toEqual(
      returns
        .filter((ret) => ret.orderId !== broken.orderId)
        .map((ret) => `ap21-${ret.returnId}`)
        .sort(),
    );
  });
});

describe('a page of 50 orders of 24 lines each, every element the guide documents', () => {
  const pageOf50 = () => world.ordersWithReturns(50, 24);

  /** The first page of this era's changed orders as Ap21 serves it, raw. */
  async function servedPage(): Promise<string> {
    const url = new URL(`${world.host.baseUrl('ap21')}/Orders/`);
    const since = toAp21DateTime(new Date(world.clock() - 3600_000).toISOString(), 'Australia/Melbourne');
    url.search = new URLSearchParams({ countryCode: 'AU', updatedAfter: since, startRow: '1', pageRows: '50' }).toString();
    const authorization = `Basic ${Buffer.from(`${AP21_CREDENTIALS.username}:${AP21_CREDENTIALS.password}`).toString('base64')}`;
    return (await fetch(url, { headers: { authorization, accept: 'version_4.0' } })).text();
  }

  it('is read whole and every return refunded, though it holds far more than 20,000 elements', async () => {
    const { orders, returns } = pageOf50();
    const dispatching = world.startDispatching();
    const run = await world.poller({ settings: { watermark: watermark(), pageRows: 50 } }).run();
    expect(run).toMatchObject({ stop: 'caught_up', pages: 1, orders: 50, outcomes: { created: 50 } });

    const page = await servedPage();
    const elements = (page.match(/<[A-Za-z]/g) ?? []).length;
    expect(elements).toBeGreaterThan(30_000);
    const first = parseXml(page).children[0]!;
    // The guide's elements are all there: lines with codes, colours, sizes, discounts, carriers; payments in full.
    for (const name of ['Addresses', 'DeliveryContacts', 'SelectedFreightOption', 'PointsPartner', 'Currency', 'TotalTax', 'DespatchType']) {
      expect(first.children.map((child) => child.name)).toContain(name);
    }
    expect(page).toMatch(/<OrderDetail><Id>\d+<\/Id><Sequence>1<\/Sequence><ProductId>\d+<\/ProductId><ColourId>\d+<\/ColourId><SkuId>/);
    expect(page).toMatch(/<Carrier><\/Carrier><CarrierUrl><\/CarrierUrl><ConNote><\/ConNote>/);
    expect(page).toContain('<NonReturnable>false</NonReturnable>');
    expect(page).toMatch(/<Discounts><Discount><DiscountTypeId>2<\/DiscountTypeId>/);
    expect(page).toMatch(
      /<PaymentDetail><Id>\d+<\/Id><Sequence>0<\/Sequence><Origin>CreditCard<\/Origin><CardType>VISA<\/CardType><Stan>\d+<\/Stan><AuthCode>/,
    );

    await dispatching.settle(orders, 30_000);
    await expectPaidOnce(orders, returns);
  });

  it('CONTROL: with the 20,000-element cap and a poller that stops at what it cannot read, the page jams every run', async () => {
    const { orders } = pageOf50();
    const capped = world.client({}, { maxDepth: 32, maxBytes: 2 * 1024 * 1024, maxElements: 20_000 });
    const jammed = watermark();
    for (let run = 0; run < 2; run++) {
      await expect(world.poller({ settings: { watermark: jammed, pageRows: 50 }, client: capped, unprocessable: 'halt' }).run()).rejects.toThrow(
        /more than 20000 elements/,
      );
    }
    expect(await world.refundsOf(orders)).toEqual([]);
    expect((await world.store.getWatermark(jammed))?.cursor).toMatchObject({ startRow: 1, seen: [] });
  });
});

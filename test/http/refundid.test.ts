import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/commons/clients/dynamodb';
import { Ap21Client } from '../../lambdas/providers/ap21/client';
import { loadAp21Config } from '../../lambdas/providers/ap21/config';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { Ap21Poller } from '../../lambdas/services/ap21-poller';
import { ReturnIntake } from '../../lambdas/services/return-intake';
import type { SimOrder } from '../../simulators/ap21/simulator';
import type { RapiOrder } from '../../lambdas/providers/refundid/schemas';
import { createRefundidSimulator, type Rma, type RefundidSimulator } from '../../simulators/refundid/simulator';
import { openAp21Order, startAp21ForStack, type Ap21ForStack } from '../support/ap21-orders';
import { POLL_SETTINGS } from '../support/harness/relay-with-ap21';
import { tableSnapshot } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let ap21: Ap21ForStack;
let portal: RefundidSimulator;

beforeAll(async () => {
  stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1' });
  ap21 = await startAp21ForStack(stack);
  Object.assign(process.env, ap21.env);
  portal = createRefundidSimulator({ baseUrl: stack.url, bearerToken: String(stack.secrets.refundid.bearerToken) });
});
afterAll(async () => {
  await ap21.host.close();
  await stack.close();
});

const SHIRT = { skuId: '21503', quantity: 3, priceMinor: 5990, productName: 'LINEN SHIRT' };
const BELT = { skuId: '880', quantity: 1, priceMinor: 4500, productName: 'BELT' };

async function placeOrder(email = 'alice@example.com'): Promise<{ ap21: SimOrder; orderId: string; shirt: string; belt: string }> {
  const { ap21: placed, order } = await openAp21Order(stack.runtime.store, ap21.sim, { email, lines: [SHIRT, BELT] });
  return { ap21: placed, orderId: order.orderId, shirt: placed.lines[0]!.lineId, belt: placed.lines[1]!.lineId };
}

const fetchOrder = (placed: { ap21: SimOrder }, email = 'alice@example.com') =>
  portal.fetchOrder({ shop: 'demo', order_number: placed.ap21.orderNumber, email });

async function returnable(placed: { ap21: SimOrder }): Promise<Record<string, number>> {
  const { status, body } = await fetchOrder(placed);
  expect(status).toBe(200);
  return Object.fromEntries((body as RapiOrder).line_items.map((line) => [line.line_item_ref, line.returnable_quantity]));
}

const rma = (placed: { orderId: string }, refundidId: string, lines: Record<string, number>, merchantRmaRef?: string): Rma => ({
  refundid_id: refundidId,
  ...(merchantRmaRef !== undefined && { merchant_rma_ref: merchantRmaRef }),
  line_items: Object.entries(lines).map(([lineId, quantity]) => ({ merchant_order_ref: placed.orderId, line_item_ref: lineId, quantity })),
});

const refundOf = async (orderId: string, refundId: string) => (await stack.runtime.store.getOrder(orderId))!.refunds[refundId];

describe('GET /refundid/order', () => {
  it('answers the Ap21 order as a RapiOrder, with returnable quantities from the ledger', async () => {
    const placed = await placeOrder();
    const { status, body } = await fetchOrder(placed);
    expect(status).toBe(200);
    expect(body).toEqual({
      merchant_order_ref: placed.orderId,
      order_number: placed.ap21.orderNumber,
      email: 'alice@example.com',
      purchased_at: new Date(Math.floor(placed.ap21.orderedAt / 1000) * 1000).toISOString(),
      payment_method: 'VISA',
      is_giftcard_used: false,
      line_items: [
        {
          line_item_ref: placed.shirt,
          title: 'LINEN SHIRT / BLACK / M',
          price: { amount: '59.90', currency: 'AUD' },
          quantity: 3,
          returnable_quantity: 3,
          product_ref: 'P21503',
          variant_ref: '21503',
          sku: '21503',
          non_returnable_reasons: [],
        },
        {
          line_item_ref: placed.belt,
          title: 'BELT / BLACK / M',
          price: { amount: '45.00', currency: 'AUD' },
          quantity: 1,
          returnable_quantity: 1,
          product_ref: 'P880',
          variant_ref: '880',
          sku: '880',
          non_returnable_reasons: [],
        },
      ],
    });
  });

  it('finds the order whatever the case of the order number and e-mail', async () => {
    const placed = await placeOrder('Bob.Smith@Example.com');
    const { status } = await portal.fetchOrder({ order_number: placed.ap21.orderNumber.toLowerCase(), email: ' bob.smith@example.COM'.trim() });
    expect(status).toBe(200);
  });

  it('answers the same 404 for an unknown order number and for the wrong e-mail, and writes nothing', async () => {
    const placed = await placeOrder();
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const wrongEmail = await fetchOrder(placed, 'mallory@example.com');
    const unknownOrder = await portal.fetchOrder({ order_number: 'W9999999', email: 'alice@example.com' });
    const otherCustomersRef = await portal.fetchOrder({ order_number: 'W9999999', email: 'alice@example.com', merchant_order_ref: placed.orderId });
    expect(wrongEmail).toEqual({ status: 404, body: { error: { code: 'order_not_found', message: 'no order matches this order number and e-mail address' } } });
    expect(unknownOrder).toEqual(wrongEmail);
    expect(otherCustomersRef).toEqual(wrongEmail);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it('falls back to merchant_order_ref for an order opened before order-number links existed', async () => {
    const placed = await placeOrder();
    const db = createDocumentClient(stack.dynamo.endpoint);
    // The order number is the order item's own lookupKey (the lookup index): an old order had none.
    await db.send(
      new UpdateCommand({ TableName: process.env.TABLE_NAME!, Key: { PK: `ORDER#${placed.orderId}`, SK: 'ORDER' }, UpdateExpression: 'REMOVE lookupKey' }),
    );
    db.destroy();
    const { status, body } = await portal.fetchOrder({ order_number: placed.ap21.orderNumber, email: 'alice@example.com', merchant_order_ref: placed.orderId });
    expect([status, (body as RapiOrder).merchant_order_ref]).toEqual([200, placed.orderId]);
    // Without it, Ap21 names the order by its number, and the ledger already open is the one answered.
    const byNumber = await fetchOrder(placed);
    expect([byNumber.status, (byNumber.body as RapiOrder).merchant_order_ref]).toEqual([200, placed.orderId]);
  });

  it('reads Ap21 once per cache period while returnable quantities stay live', async () => {
    const placed = await placeOrder();
    const reads = () => ap21.sim.calls('GET /Persons/{pid}/Orders/{oid}').filter((call) => call.path.includes(`/Orders/${placed.ap21.orderId}`)).length;
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 3, [placed.belt]: 1 });
    expect((await portal.push('refunding', rma(placed, 'rid-cache', { [placed.shirt]: 2 }))).status).toBe(200);
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 1, [placed.belt]: 1 });
    expect(reads()).toBe(1);
  });

  it('answers 503 while Ap21 is down, and serves the order once it is back', async () => {
    const placed = await placeOrder();
    ap21.sim.injectFailures(1, { status: 503 });
    const down = await fetchOrder(placed);
    expect([down.status, (down.body as { error: { code: string } }).error.code]).toEqual([503, 'ap21_unavailable']);
    expect((await fetchOrder(placed)).status).toBe(200);
  });
});

describe('GET /refundid/order for an order refund-relay has not opened yet', () => {
  const neverPolled = (email = 'carol@example.com') => ap21.sim.addOrder({ email, lines: [SHIRT, BELT] });
  const fetchNumber = (order: SimOrder, email = 'carol@example.com') => portal.fetchOrder({ shop: 'demo', order_number: order.orderNumber, email });
  const ledgerOf = (order: SimOrder) => stack.runtime.store.getOrder(`ap21-${order.orderId}`);

  it('answers from Ap21 by the order number, opens the ledger once, and its RMA then reserves the units', async () => {
    const order = neverPolled();
    expect(await ledgerOf(order)).toBeUndefined();
    const { status, body } = await fetchNumber(order);
    expect(status).toBe(200);
    const answered = body as RapiOrder;
    expect(answered).toMatchObject({ merchant_order_ref: `ap21-${order.orderId}`, order_number: order.orderNumber, email: 'carol@example.com' });
    expect(answered.line_items.map((line) => [line.line_item_ref, line.quantity, line.returnable_quantity, line.price.amount])).toEqual([
      [order.lines[0]!.lineId, 3, 3, '59.90'],
      [order.lines[1]!.lineId, 1, 1, '45.00'],
    ]);
    expect(ap21.sim.calls('GET /OrderNumbers/{n}').filter((call) => call.path.endsWith(order.orderNumber))).toHaveLength(1);

    const placed = { orderId: answered.merchant_order_ref };
    const reserved = await portal.push('refunding', rma(placed, 'rid-np-1', { [order.lines[0]!.lineId]: 2 }));
    expect(reserved).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-rid-np-1', state: 'refundid_pending' } });
    const again = (await fetchNumber(order)).body as RapiOrder;
    expect(again.line_items.map((line) => line.returnable_quantity)).toEqual([1, 1]);
    expect((await ledgerOf(order))!.timeline.filter((entry) => entry.event === 'order_opened')).toHaveLength(1);
  });

  it('opens the ledger exactly once when fetches and the poller open it at the same moment', async () => {
    const order = neverPolled();
    const intake = new ReturnIntake({
      store: stack.runtime.store,
      ledger: loadAp21LedgerSettings({}),
      routing: { policy: 'apace_first', apaceEnabled: false, offerDays: 10 },
    });
    const client = new Ap21Client(loadAp21Config({ ...ap21.env }), { get: async () => stack.secrets.ap21, refresh: async () => undefined });
    const polled = client.getOrder(order.personId, order.orderId).then((read) => intake.openLedger(read));
    const fetched = await Promise.all(Array.from({ length: 4 }, () => fetchNumber(order)));
    await polled;
    expect(fetched.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    const ledger = (await ledgerOf(order))!;
    expect(ledger.timeline.filter((entry) => entry.event === 'order_opened')).toHaveLength(1);
    expect(Object.values(ledger.lines).map((line) => line.available)).toEqual([3, 1]);
  });

  it('answers 422 nothing_to_return, writing nothing, for an order Ap21 has but no ledger can be opened for', async () => {
    const order = ap21.sim.addOrder({ email: 'carol@example.com', lines: [] });
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const answer = await fetchNumber(order);
    expect([answer.status, (answer.body as { error: { code: string } }).error.code]).toEqual([422, 'nothing_to_return']);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it('answers 404, writing nothing, for an order Ap21 does not have and for the wrong e-mail; 503 while Ap21 is down', async () => {
    const order = neverPolled();
    const before = await tableSnapshot(stack.dynamo.endpoint);
    ap21.sim.injectFailures(1, { status: 503 });
    const down = await fetchNumber(order);
    expect([down.status, (down.body as { error: { code: string } }).error.code]).toEqual([503, 'ap21_unavailable']);
    // Control: a 404 that is not Ap21's "no data" (an IIS page: a wrong AP21_API_URL) is no missing order.
    ap21.sim.injectFailures(1, { status: 404, body: '<html><body>The resource cannot be found.</body></html>' });
    const misrouted = await fetchNumber(order);
    expect([misrouted.status, (misrouted.body as { error: { code: string } }).error.code]).toEqual([503, 'ap21_unavailable']);
    const unknown = await portal.fetchOrder({ order_number: 'W7777777', email: 'carol@example.com' });
    const wrongEmail = await fetchNumber(order, 'mallory@example.com');
    expect(unknown).toEqual({ status: 404, body: { error: { code: 'order_not_found', message: 'no order matches this order number and e-mail address' } } });
    expect(wrongEmail).toEqual(unknown);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
    expect((await fetchNumber(order)).status).toBe(200);
  });
});

describe('GET /refundid/order: returnability and tenders (issue 15)', () => {
  const CANCELLED = { skuId: '31001', quantity: 1, priceMinor: 3000, productName: 'SCARF', status: 'Cancelled' as const };
  const FINAL_SALE = { skuId: '31002', quantity: 2, priceMinor: 2000, productName: 'SOCKS', nonReturnable: true };
  const SHIPPED = { skuId: '31003', quantity: 1, priceMinor: 4000, productName: 'CAP', status: 'Shipped' as const };
  const CANCELLED_REASON = 'This item was cancelled; there is nothing to return.';
  const FINAL_SALE_REASON = 'This item cannot be returned: the retailer marked it non-returnable.';
  const reasonsOf = (body: unknown): Record<string, [number, readonly string[]]> => {
    const answer: Record<string, [number, readonly string[]]> = {};
    for (const line of (body as RapiOrder).line_items) answer[String(line.variant_ref)] = [line.returnable_quantity, line.non_returnable_reasons];
    return answer;
  };

  it('answers 0 returnable with the reason for a cancelled and a non-returnable line, whether the ledger or Ap21 knows it', async () => {
    // Opened before the facts were recorded (as the ledger of an order opened earlier): Ap21's line says it.
    const placed = await openAp21Order(stack.runtime.store, ap21.sim, { email: 'dora@example.com', lines: [CANCELLED, FINAL_SALE, SHIPPED] });
    const known = await portal.fetchOrder({ order_number: placed.ap21.orderNumber, email: 'dora@example.com' });
    // Opened by the fetch itself: the ledger records them.
    const fresh = ap21.sim.addOrder({ email: 'dora@example.com', lines: [CANCELLED, FINAL_SALE, SHIPPED] });
    const opened = await portal.fetchOrder({ order_number: fresh.orderNumber, email: 'dora@example.com' });
    const ledger = (await stack.runtime.store.getOrder(`ap21-${fresh.orderId}`))!;
    expect(Object.values(ledger.lines).map((line) => line.nonReturnable)).toEqual([CANCELLED_REASON, FINAL_SALE_REASON, undefined]);
    for (const answer of [known, opened]) {
      expect(answer.status).toBe(200);
      expect(reasonsOf(answer.body)).toEqual({ '31001': [0, [CANCELLED_REASON]], '31002': [0, [FINAL_SALE_REASON]], '31003': [1, []] });
    }
  });

  it('refuses an RMA for a unit it answered 0 returnable (422 naming the reason) and reserves nothing', async () => {
    const fresh = ap21.sim.addOrder({ email: 'dora@example.com', lines: [FINAL_SALE, SHIPPED] });
    const opened = await portal.fetchOrder({ order_number: fresh.orderNumber, email: 'dora@example.com' });
    expect(opened.status).toBe(200);
    const orderId = `ap21-${fresh.orderId}`;
    const [finalSale, cap] = fresh.lines.map((line) => line.lineId);
    const refused = await portal.push('refunding', {
      refundid_id: 'rid-final-sale',
      line_items: [{ merchant_order_ref: orderId, line_item_ref: finalSale!, quantity: 1 }],
    });
    expect([refused.status, (refused.body as { error: { code: string; message: string } }).error]).toEqual([
      422,
      { code: 'not_returnable', message: `line ${finalSale}: ${FINAL_SALE_REASON}` },
    ]);
    const ledger = (await stack.runtime.store.getOrder(orderId))!;
    expect(Object.keys(ledger.refunds)).toEqual([]);
    // Control: the returnable line of the same order is reserved.
    const ok = await portal.push('refunding', { refundid_id: 'rid-cap', line_items: [{ merchant_order_ref: orderId, line_item_ref: cap!, quantity: 1 }] });
    expect(ok.status).toBe(200);
  });

  it('names the payment a return goes back to first as payment_method, and any gift voucher as is_giftcard_used', async () => {
    const lines = [{ ...SHIPPED, quantity: 2 }];
    const voucherFirst = ap21.sim.addOrder({
      email: 'erin@example.com',
      lines,
      payments: [
        { origin: 'GiftVoucher', amountMinor: 3000 },
        { origin: 'CreditCard', cardType: 'VISA', stan: '5501', amountMinor: 5000 },
      ],
    });
    const cardOnly = ap21.sim.addOrder({ email: 'erin@example.com', lines, payments: [{ origin: 'Zip', amountMinor: 8000 }] });
    const answers = await Promise.all(
      [voucherFirst, cardOnly].map((order) => portal.fetchOrder({ order_number: order.orderNumber, email: 'erin@example.com' })),
    );
    expect(answers.map(({ body }) => [(body as RapiOrder).payment_method, (body as RapiOrder).is_giftcard_used])).toEqual([
      ['GiftVoucher', true],
      ['Zip', false],
    ]);
  });
});

describe('POST /refundid/refund', () => {
  it('reserves at refunding and settles at refundid; the order fetch follows every step', async () => {
    const placed = await placeOrder();
    const first = await portal.push('refunding', rma(placed, 'rid-1', { [placed.shirt]: 1 }, 'RMA-1001'));
    expect(first).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-RMA-1001', state: 'refundid_pending' } });
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 2, [placed.belt]: 1 });
    const order = (await stack.runtime.store.getOrder(placed.orderId))!;
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 1, refunded: 0 });
    expect(order.refunds['rfd-RMA-1001']).toMatchObject({
      channel: 'refundid',
      amount: { minor: 5990, currency: 'AUD' },
      source: { kind: 'refundid_rma', ref: 'rid-1' },
    });

    const paid = await portal.push('refundid', rma(placed, 'rid-1', { [placed.shirt]: 1 }, 'RMA-1001'));
    expect(paid).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-RMA-1001', state: 'paid' } });
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 2, [placed.belt]: 1 });
    expect((await stack.runtime.store.getOrder(placed.orderId))!.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 2 });
  });

  it('gives the units back when the RMA fails', async () => {
    const placed = await placeOrder();
    await portal.push('refunding', rma(placed, 'rid-2', { [placed.shirt]: 2, [placed.belt]: 1 }));
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 1, [placed.belt]: 0 });
    expect(await portal.push('failed', { refundid_id: 'rid-2' } as Rma)).toEqual({
      status: 200,
      body: { received: true, refund_id: 'rfd-rid-2', state: 'released' },
    });
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 3, [placed.belt]: 1 });
  });

  it('refuses units another refund holds with 409 naming the line, and writes nothing', async () => {
    const placed = await placeOrder();
    expect((await portal.push('refunding', rma(placed, 'rid-3a', { [placed.shirt]: 3 }))).status).toBe(200);
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const refused = await portal.push('refunding', rma(placed, 'rid-3b', { [placed.belt]: 1, [placed.shirt]: 1 }));
    expect(refused).toEqual({
      status: 409,
      body: { error: { code: 'units_unavailable', message: `line ${placed.shirt}: 1 unit(s) asked, 0 not yet refunded or in flight` } },
    });
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it('treats repeated pushes as one: same answers, one reservation, one settlement', async () => {
    const placed = await placeOrder();
    const push = rma(placed, 'rid-4', { [placed.shirt]: 1 });
    const reserves = await Promise.all(Array.from({ length: 8 }, () => portal.push('refunding', push)));
    expect(new Set(reserves.map((r) => JSON.stringify(r)))).toEqual(
      new Set([JSON.stringify({ status: 200, body: { received: true, refund_id: 'rfd-rid-4', state: 'refundid_pending' } })]),
    );
    const settles = await Promise.all(Array.from({ length: 8 }, () => portal.push('refundid', push)));
    expect(settles.every((r) => r.status === 200 && (r.body as { state: string }).state === 'paid')).toBe(true);
    const order = (await stack.runtime.store.getOrder(placed.orderId))!;
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 2 });
    expect(order.timeline.filter((entry) => entry.refundId === 'rfd-rid-4').map((entry) => entry.event)).toEqual(['refund_created', 'refundid_refunded']);
    const version = order.version;
    await portal.push('refunding', push);
    expect((await stack.runtime.store.getOrder(placed.orderId))!.version).toBe(version);
  });

  it('books refundid without a prior refunding as paid at once, and ignores the late refunding', async () => {
    const placed = await placeOrder();
    const push = rma(placed, 'rid-5', { [placed.shirt]: 2 });
    expect(await portal.push('refundid', push)).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-rid-5', state: 'paid' } });
    expect(await portal.push('refunding', push)).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-rid-5', state: 'paid' } });
    expect((await stack.runtime.store.getOrder(placed.orderId))!.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 2, available: 1 });
  });

  it('releases at once on failed before refunding, so the late refunding reserves nothing', async () => {
    const placed = await placeOrder();
    const push = rma(placed, 'rid-6', { [placed.shirt]: 1 });
    expect(await portal.push('failed', push)).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-rid-6', state: 'released' } });
    expect(await portal.push('refunding', push)).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-rid-6', state: 'released' } });
    expect(await returnable(placed)).toEqual({ [placed.shirt]: 3, [placed.belt]: 1 });
  });

  it('flags contradictions: refundid after failed is a 409 kept in the inbox', async () => {
    const placed = await placeOrder();
    const push = rma(placed, 'rid-7', { [placed.shirt]: 1 });
    await portal.push('refunding', push);
    await portal.push('failed', push);
    const contradiction = await portal.push('refundid', push);
    expect([contradiction.status, (contradiction.body as { error: { code: string } }).error.code]).toEqual([409, 'transition_rejected']);
    const inbox = (await tableSnapshot(stack.dynamo.endpoint)).filter(
      (item) =>
        (item as { PK: string; SK: string }).PK === `ORDER#${placed.orderId}` &&
        (item as { SK: string }).SK.startsWith('INBOX#refundid#') &&
        // Pushes that changed the refund are kept too, pointed at by their timeline entries.
        (item as { kept?: string }).kept === undefined,
    );
    expect(inbox).toHaveLength(1);
    expect(inbox[0]).toMatchObject({ note: expect.stringContaining('refund is released') });
  });

  it('refuses refundid for units another channel already holds with 409, keeping the push for an operator', async () => {
    const placed = await placeOrder();
    await portal.push('refunding', rma(placed, 'rid-8a', { [placed.belt]: 1 }));
    const late = await portal.push('refundid', rma(placed, 'rid-8b', { [placed.belt]: 1 }));
    expect([late.status, (late.body as { error: { message: string } }).error.message]).toEqual([
      409,
      `Refundid paid RMA rid-8b, but line ${placed.belt}: 1 unit(s) asked, 0 not yet refunded or in flight; an operator must reconcile`,
    ]);
    expect(await refundOf(placed.orderId, 'rfd-rid-8b')).toBeUndefined();
    const kept = (await tableSnapshot(stack.dynamo.endpoint)).filter(
      (item) =>
        (item as { PK: string }).PK === `ORDER#${placed.orderId}` &&
        (item as { SK: string }).SK.startsWith('INBOX#refundid#') &&
        // Pushes that changed the refund are kept too, pointed at by their timeline entries.
        (item as { kept?: string }).kept === undefined,
    );
    expect(kept).toEqual([expect.objectContaining({ note: expect.stringContaining('RMA rid-8b refundid: Refundid paid, but line') })]);
  });

  it('finds the refund by refundid_id even when a later push adds a merchant_rma_ref', async () => {
    const placed = await placeOrder();
    await portal.push('refunding', rma(placed, 'rid-9', { [placed.shirt]: 1 }));
    const paid = await portal.push('refundid', { refundid_id: 'rid-9', merchant_rma_ref: 'RMA-LATE' } as Rma);
    expect(paid).toEqual({ status: 200, body: { received: true, refund_id: 'rfd-rid-9', state: 'paid' } });
  });

  it.each<[string, (placed: Awaited<ReturnType<typeof placeOrder>>) => Rma, number, string]>([
    [
      'line items of two orders',
      (p) => ({
        refundid_id: 'rid-x1',
        line_items: [...rma(p, 'x', { [p.shirt]: 1 }).line_items, { merchant_order_ref: 'ap21-1', line_item_ref: p.belt, quantity: 1 }],
      }),
      422,
      'multiple_orders',
    ],
    ['a line the order does not have', (p) => rma(p, 'rid-x2', { '999999': 1 }), 422, 'invalid_refund'],
    ['more units than were bought', (p) => rma(p, 'rid-x3', { [p.belt]: 2 }), 422, 'invalid_refund'],
    [
      'an order we do not know',
      () => ({ refundid_id: 'rid-x4', line_items: [{ merchant_order_ref: 'ap21-0', line_item_ref: '1', quantity: 1 }] }),
      404,
      'order_not_found',
    ],
    ['an RMA we never saw that names no order', () => ({ refundid_id: 'rid-x5' }) as Rma, 404, 'rma_not_found'],
    ['a line named toString', (p) => rma(p, 'rid-x6', { toString: 1 }), 422, 'invalid_refund'],
  ])('refuses %s, writing nothing', async (_, build, status, code) => {
    const placed = await placeOrder();
    const before = await tableSnapshot(stack.dynamo.endpoint);
    const answer = await portal.push('refunding', build(placed));
    expect([answer.status, (answer.body as { error: { code: string } }).error.code]).toEqual([status, code]);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });
});

describe('POST /refundid/refund after the poller recorded the same Refundid refund from Ap21', () => {
  const intake = () =>
    new ReturnIntake({
      store: stack.runtime.store,
      ledger: loadAp21LedgerSettings({}),
      routing: { policy: 'apace_first', apaceEnabled: false, offerDays: 10 },
    });
  const client = () => new Ap21Client(loadAp21Config({ ...ap21.env }), { get: async () => stack.secrets.ap21, refresh: async () => undefined });

  /** An order whose shirt Refundid refunded and wrote into Ap21 as a return (Stan `stan`), ingested as the poller does. */
  async function polledRefundidReturn(stan: string) {
    const order = ap21.sim.addOrder({ email: 'dave@example.com', lines: [SHIRT, BELT] });
    const ret = ap21.sim.addRefundidReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan });
    const reader = client();
    const outcome = await intake().ingest(
      await reader.getOrder(order.personId, order.orderId),
      await reader.getReturn(order.personId, order.orderId, ret.returnId),
    );
    expect(outcome.kind).toBe('created');
    return { orderId: `ap21-${order.orderId}`, refundId: `ap21-${ret.returnId}`, shirt: order.lines[0]!.lineId, belt: order.lines[1]!.lineId };
  }

  it('attaches a push naming it (refundid_id as the payment Stan): every status answers 200 with that refund, nothing is booked twice', async () => {
    const placed = await polledRefundidReturn('rid-ap21-1');
    const push = rma(placed, 'rid-ap21-1', { [placed.shirt]: 1 });
    const attached = { status: 200, body: { received: true, refund_id: placed.refundId, state: 'paid' } };
    expect(await portal.push('refunding', push)).toEqual(attached);
    expect(await portal.push('refundid', push)).toEqual(attached);
    expect(await portal.push('refundid', push)).toEqual(attached);
    const order = (await stack.runtime.store.getOrder(placed.orderId))!;
    expect(Object.keys(order.refunds)).toEqual([placed.refundId]);
    expect(order.refunds[placed.refundId]).toMatchObject({ state: 'paid', source: { kind: 'ap21_refundid' }, refs: { refundidId: 'rid-ap21-1' } });
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 2 });
  });

  it('attaches a push with exactly the recorded units when nothing names it', async () => {
    const placed = await polledRefundidReturn('0938');
    expect(await portal.push('refundid', rma(placed, 'rid-ap21-2', { [placed.shirt]: 1 }))).toEqual({
      status: 200,
      body: { received: true, refund_id: placed.refundId, state: 'paid' },
    });
    expect(Object.keys((await stack.runtime.store.getOrder(placed.orderId))!.refunds)).toEqual([placed.refundId]);
  });

  it('answers 409 only for a real conflict of units', async () => {
    const placed = await polledRefundidReturn('rid-ap21-3');
    const named = await portal.push('refundid', rma(placed, 'rid-ap21-3', { [placed.shirt]: 2 }));
    expect([named.status, (named.body as { error: { code: string } }).error.code]).toEqual([409, 'refund_conflict']);
    const tooMany = await portal.push('refunding', rma(placed, 'rid-ap21-4', { [placed.shirt]: 3 }));
    expect([tooMany.status, (tooMany.body as { error: { code: string } }).error.code]).toEqual([409, 'units_unavailable']);
    // Units still free are an RMA of their own, beside the refund recorded from Ap21.
    expect(await portal.push('refunding', rma(placed, 'rid-ap21-5', { [placed.shirt]: 2 }))).toEqual({
      status: 200,
      body: { received: true, refund_id: 'rfd-rid-ap21-5', state: 'refundid_pending' },
    });
  });

  it("attaches to the refund booked from Refundid's negative order in the changed-orders feed", async () => {
    const order = ap21.sim.addOrder({ email: 'erin@example.com', lines: [SHIRT, BELT] });
    const negative = ap21.sim.addRefundidNegativeOrder(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }], stan: 'rid-neg-1' });
    const poller = new Ap21Poller({
      client: client(),
      store: stack.runtime.store,
      intake: intake(),
      settings: { ...POLL_SETTINGS, watermark: 'refundid-after-poller', initialLookbackMs: 60_000, pageRows: 100 },
    });
    await poller.run();
    const placed = { orderId: `ap21-${order.orderId}` };
    expect(await portal.push('refundid', rma(placed, 'rid-neg-1', { [order.lines[1]!.lineId]: 1 }))).toEqual({
      status: 200,
      body: { received: true, refund_id: `ap21-${negative.orderId}`, state: 'paid' },
    });
    expect(Object.keys((await stack.runtime.store.getOrder(placed.orderId))!.refunds)).toEqual([`ap21-${negative.orderId}`]);
  });
});

import type { SimOrder } from '../../simulators/ap21/simulator';
import { SHIRT, startIngest, type IngestHarness } from '../support/harness/relay-with-ap21';

let h: IngestHarness;
let watermarks = 0;

beforeAll(async () => {
  h = await startIngest();
});
afterAll(() => h.close());
beforeEach(() => h.newEra());

const run = () => h.poller({ settings: { watermark: `refundid-negative-${++watermarks}` } }).run();
const ledgerOf = async (order: SimOrder) => (await h.store.getOrder(`ap21-${order.orderId}`))!;
const ONE_SHIRT = { ...SHIRT, quantity: 1 };

describe("Refundid's negative orders in the changed-orders feed", () => {
  it('are booked as paid Refundid refunds of the original units, and a later return of the same unit is not refunded on the card', async () => {
    const order = h.ap21.addOrder({ lines: [ONE_SHIRT] });
    const negative = h.ap21.addRefundidNegativeOrder(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan: '4711' });
    expect((await run()).outcomes).toMatchObject({ created: 1 });

    const booked = (await ledgerOf(order)).refunds[`ap21-${negative.orderId}`];
    expect(booked).toMatchObject({
      state: 'paid',
      channel: 'refundid',
      source: { kind: 'ap21_refundid', ref: negative.orderId },
      refs: { ap21ReturnId: negative.orderId, ap21ReturnNumber: negative.orderNumber, ap21RefundStan: '4711' },
      lines: { [order.lines[0]!.lineId]: 1 },
      amount: { minor: 5990, currency: 'AUD' },
    });
    expect(await h.store.getOrder(`ap21-${negative.orderId}`)).toBeUndefined();

    // The customer also sends the shirt back through Ap21: the unit is already refunded, so no card reversal.
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    expect((await run()).outcomes).toMatchObject({ isolated: 1 });
    const ledger = await ledgerOf(order);
    expect(Object.keys(ledger.refunds)).toEqual([`ap21-${negative.orderId}`]);
    expect(ledger.dueAt).toBeUndefined();
    const held = (await h.store.listIsolations('ap21')).find((isolation) => isolation.subject === `return:${ret.returnId}`);
    expect(held?.reason).toMatch(/cannot be refunded/);
  });

  it("find the original order by the Refundid payment's Reference when there is no OrigOrderNum, and book it once however often it is read", async () => {
    const order = h.ap21.addOrder({ lines: [ONE_SHIRT] });
    const negative = h.ap21.addRefundidNegativeOrder(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], nameOriginal: 'Reference' });
    await run();
    h.ap21.touchOrder(negative.orderId);
    expect((await run()).outcomes).toMatchObject({ already_ingested: 1 });
    expect(Object.keys((await ledgerOf(order)).refunds)).toEqual([`ap21-${negative.orderId}`]);
  });

  it('are held for an operator, with the reason, when the original order cannot be identified', async () => {
    const order = h.ap21.addOrder({ lines: [ONE_SHIRT] });
    const anonymous = h.ap21.addRefundidNegativeOrder(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], nameOriginal: 'none' });
    expect((await run()).outcomes).toMatchObject({ isolated: 1 });
    const held = (await h.store.listIsolations('ap21')).find((isolation) => isolation.subject === `refundid-order:${anonymous.orderId}`);
    expect(held).toMatchObject({ attributes: { ap21OrderId: anonymous.orderId, orderNumber: anonymous.orderNumber } });
    expect(held?.reason).toContain(`Ap21 has no original order Refundid 0938`);
    expect((await ledgerOf(order)).refunds).toEqual({});
  });
});

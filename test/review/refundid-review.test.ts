import { RECEIPT_OVERDUE_REASON, type Refund } from '../../lambdas/domain/refund';
import { ledgerViolations } from '../../lambdas/domain/order';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { LocalQueue } from '../../lambdas/services/local-queue';
import { createDispatcher, createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { rmaPushSchema } from '../../lambdas/providers/refundid/schemas';
import { applyRmaPush } from '../../lambdas/services/refundid-rma';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import type { ProviderSimulators } from '../../local/simulators';
import type { SimOrder } from '../../simulators/ap21/simulator';
import type { Rma, RefundidSimulator } from '../../simulators/refundid/simulator';
import { tableSnapshot } from '../support/fixtures';
import { gatedStore, gatedCreateStore } from '../support/gated-store';
import { startRefundidPayoutWorld, type IngestHarness, type RefundidPayoutWorld } from '../support/harness/relay-with-ap21';

/**
 * Review of the Refundid money path (2026-12-03): Refundid pays the customer itself and pushes its
 * RMAs to POST /refundid/refund (docs/design.md §2.2, §2.3; docs/providers.md §2). The ledger must
 * record those units and that money so that no other channel pays them again, and must never lose a
 * push. Over dynalite, the local server and the Ap21, Apace and EPG simulators on HTTP, with a
 * dispatcher: a stage that pays every channel when the return is seen, the card's last four in
 * Ap21's `Reference` where a case needs an Apace offer.
 */
let world: RefundidPayoutWorld;
let h: IngestHarness;
let sims: ProviderSimulators;
let queue: LocalQueue;
let portal: RefundidSimulator;
let rounds = 0;

beforeAll(async () => {
  world = await startRefundidPayoutWorld({ AP21_CARD_LAST_FOUR_FIELD: 'Reference' });
  ({ h, sims, queue, portal } = world);
});
afterAll(() => world.close());
beforeEach(() => h.newEra());

const SHIRT = { skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'LINEN SHIRT' };
const BELT = { skuId: '880', quantity: 1, priceMinor: 4500, productName: 'BELT' };

interface Placed {
  readonly sim: SimOrder;
  readonly orderId: string;
  readonly shirt: string;
  readonly belt: string;
}

/** An order paid by an EPG card, its ledger opened by Refundid's order fetch as the portal does before any RMA. */
async function placeOrder(options: { lastFour?: boolean } = {}): Promise<Placed> {
  const stan = `RV-${Date.now()}-${++rounds}`;
  const card = {
    origin: 'CreditCard',
    cardType: 'VISA',
    stan,
    ...(options.lastFour && { reference: '************7001' }),
    amountMinor: 2 * SHIRT.priceMinor + BELT.priceMinor,
  };
  const sim = h.ap21.addOrder({ email: 'alice@example.com', lines: [SHIRT, BELT], payments: [card] });
  sims.addonPayments.seedTransaction(stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const fetched = await portal.fetchOrder({ shop: 'demo', order_number: sim.orderNumber, email: 'alice@example.com' });
  expect(fetched.status).toBe(200);
  return { sim, orderId: `ap21-${sim.orderId}`, shirt: sim.lines[0]!.lineId, belt: sim.lines[1]!.lineId };
}

const rma = (placed: Placed, refundidId: string, lines: Record<string, number>, extra: Partial<Rma> = {}): Rma => ({
  refundid_id: refundidId,
  line_items: Object.entries(lines).map(([lineId, quantity]) => ({ merchant_order_ref: placed.orderId, line_item_ref: lineId, quantity })),
  ...extra,
});

const orderOf = async (placed: Placed) => (await h.store.getOrder(placed.orderId))!;
const refundOf = async (placed: Placed, refundId: string): Promise<Refund | undefined> => (await orderOf(placed)).refunds[refundId];
const codeOf = (answer: { body: unknown }) => (answer.body as { error?: { code?: string } }).error?.code;

/** Refundid pushes kept for an operator that no timeline entry points at, by their notes. */
async function keptNotes(placed: Placed): Promise<string[]> {
  const kept = await h.store.listInbound(placed.orderId);
  const pointedAt = new Set((await h.store.readTimeline(placed.orderId)).map((entry) => entry.inbox));
  return kept.filter((record) => record.source === 'refundid' && !pointedAt.has(`INBOX#${record.source}#${record.key}`)).map((record) => record.note);
}

async function settle(): Promise<void> {
  await queue.drained();
  await replayInbox(createInboxReplay(h.stack.runtime, { ...process.env, ...sims.env }), Date.now());
  await sweep(h.store, queue, Date.now());
  await queue.drained();
}

describe('review: RMA bodies the real Refundid may send', () => {
  // Before: `price` was validated as {amount: non-negative decimal, currency: ISO code} although the
  // refund is priced from the ledger and the price never read; any other shape of a field we ignore
  // (a number, a lowercase currency, no currency, a discounted negative amount) was a 422, and a
  // `refundid` push refused so is money Refundid paid that the ledger never hears of.
  it.each<[string, unknown]>([
    ['a price as a bare number', 59.9],
    ['a price without currency', { amount: '59.90' }],
    ['a price in a lowercase currency', { amount: '59.90', currency: 'aud' }],
    ['a negative price (a discount line)', { amount: '-5.00', currency: 'AUD' }],
    ['a price as a bare string', '59.90'],
  ])('books a refundid push whose line carries %s (the price is never read)', async (_, price) => {
    const placed = await placeOrder();
    const push = {
      refundid_id: `rid-price-${++rounds}`,
      status: 'refundid',
      line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: placed.belt, quantity: 1, price }],
    };
    const answer = await fetch(`${h.stack.url}/refundid/refund`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(h.stack.secrets.refundid.bearerToken)}`, 'content-type': 'application/json' },
      body: JSON.stringify(push),
    });
    expect([answer.status, await answer.json()]).toEqual([200, { received: true, refund_id: `rfd-${push.refundid_id}`, state: 'paid' }]);
    expect((await orderOf(placed)).lines[placed.belt]).toMatchObject({ refunded: 1, available: 0 });
  });

  // Refundid's field types are UNCONFIRMED (docs/providers.md §2): its ids may come as JSON numbers (our line ids
  // and Ap21 ids are digits), and an absent merchant_rma_ref as "". Before: each was a 422 on every push.
  it.each<[string, (placed: Placed, id: number) => Record<string, unknown>, string]>([
    [
      'refundid_id and line_item_ref as numbers',
      (placed, id) => ({ refundid_id: id, line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: Number(placed.belt), quantity: 1 }] }),
      'rfd-',
    ],
    [
      'merchant_rma_ref as an empty string',
      (placed, id) => ({
        refundid_id: `rid-${id}`,
        merchant_rma_ref: '',
        line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: placed.belt, quantity: 1 }],
      }),
      'rfd-rid-',
    ],
  ])('books a refundid push with %s', async (_, body, prefix) => {
    const placed = await placeOrder();
    const id = 900_000 + ++rounds;
    const answer = await fetch(`${h.stack.url}/refundid/refund`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(h.stack.secrets.refundid.bearerToken)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body(placed, id), status: 'refundid' }),
    });
    expect([answer.status, await answer.json()]).toEqual([200, { received: true, refund_id: `${prefix}${id}`, state: 'paid' }]);
    expect((await orderOf(placed)).lines[placed.belt]).toMatchObject({ refunded: 1, available: 0 });
  });

  // Holds on main, kept as a regression: RapiReturn's documented extras and nulls where a field is absent.
  it('books a refundid push with RapiReturn fields we do not read and nulls, and answers a failed with null line items', async () => {
    const placed = await placeOrder();
    const id = `rid-extras-${++rounds}`;
    const send = (body: Record<string, unknown>) =>
      fetch(`${h.stack.url}/refundid/refund`, {
        method: 'POST',
        headers: { authorization: `Bearer ${String(h.stack.secrets.refundid.bearerToken)}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const line = {
      merchant_order_ref: placed.orderId,
      line_item_ref: placed.belt,
      quantity: 1,
      price: null,
      compensation_method: null,
      tax_detail: { amount: '4.09', rate: 0.1 },
      return_reason: 'too_big',
      child_return_reason: null,
      adjustments: [{ type: 'restocking_fee', amount: { amount: '5.00', currency: 'AUD' } }],
    };
    const extras = { created_at: '2026-12-03T10:00:00Z', return_shipping: { tracking: null, deductions: [] }, api_version: '2025-01', shop: 'demo' };
    const paid = await send({ refundid_id: id, merchant_rma_ref: null, status: 'refundid', line_items: [line], ...extras });
    expect([paid.status, await paid.json()]).toEqual([200, { received: true, refund_id: `rfd-${id}`, state: 'paid' }]);
    const reserved = rma(placed, `rid-extras-failed-${rounds}`, { [placed.shirt]: 1 });
    expect((await portal.push('refunding', reserved)).status).toBe(200);
    const failedNull = await send({ refundid_id: reserved.refundid_id, merchant_rma_ref: null, status: 'failed', line_items: null, ...extras });
    expect([failedNull.status, await failedNull.json()]).toEqual([200, { received: true, refund_id: `rfd-${reserved.refundid_id}`, state: 'released' }]);
  });

  it('control: a price as documented is accepted, and a malformed field we do read (quantity) is still refused', async () => {
    const placed = await placeOrder();
    const ok = await portal.push('refundid', rma(placed, `rid-price-ok-${++rounds}`, { [placed.belt]: 1 }));
    expect(ok.status).toBe(200);
    const bad = await portal.push('refunding', {
      refundid_id: `rid-q-${++rounds}`,
      line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: placed.shirt, quantity: 0 }],
    });
    expect([bad.status, codeOf(bad)]).toEqual([422, 'invalid_request']);
  });
});

describe('review: an RMA whose merchant_rma_ref another RMA of the order already used', () => {
  // A merchant-initiated RMA carries our `merchant_rma_ref`; the refund id was `rfd-<merchant_rma_ref>`. When an
  // RMA failed and the customer started again from the same link (a new refundid_id, the same merchant_rma_ref),
  // the new RMA found the first one's released refund under its id and was refused 409 refund_conflict on every
  // push: the customer could not be refunded, and its `refundid` push (Refundid paid) was lost.
  it('reserves and books the second RMA under a refund of its own; the first stays as it was', async () => {
    const placed = await placeOrder();
    const first = rma(placed, `rid-mr-a-${++rounds}`, { [placed.shirt]: 1 }, { merchant_rma_ref: `MR-${rounds}` });
    const second = rma(placed, `rid-mr-b-${rounds}`, { [placed.shirt]: 1 }, { merchant_rma_ref: `MR-${rounds}` });
    expect((await portal.runRma(first, 'failed')).final).toMatchObject({ status: 200, body: { state: 'released' } });
    const run = await portal.runRma(second);
    expect(run.reserved).toEqual({ status: 200, body: { received: true, refund_id: `rfd-${second.refundid_id}`, state: 'refundid_pending' } });
    expect(run.final).toEqual({ status: 200, body: { received: true, refund_id: `rfd-${second.refundid_id}`, state: 'paid' } });
    const order = await orderOf(placed);
    expect(order.refunds[`rfd-MR-${rounds}`]).toMatchObject({ state: 'released', source: { ref: first.refundid_id } });
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    // Later pushes of either RMA find their own refund.
    expect(await portal.push('refundid', second)).toMatchObject({ status: 200, body: { refund_id: `rfd-${second.refundid_id}`, state: 'paid' } });
    expect(await portal.push('failed', first)).toMatchObject({ status: 200, body: { refund_id: `rfd-MR-${rounds}`, state: 'released' } });
    expect(portal.payouts().get(`rfd-${second.refundid_id}`)).toBe(1);
  });

  // Two RMAs with one merchant_rma_ref first seen at once: both link their RMA to rfd-<merchant_rma_ref>, one creates
  // it, and the other's create is refused; its link is then moved to its own refund id. Three rounds on fresh orders,
  // so one round whose pushes happen not to overlap cannot hide a defect.
  it('reserves each of two RMAs pushed at once with one merchant_rma_ref, and finds each again', async () => {
    for (let round = 0; round < 3; round++) {
      const placed = await placeOrder();
      const ref = `MR-AT-ONCE-${++rounds}`;
      const both = ['a', 'b'].map((side) => rma(placed, `rid-at-once-${rounds}${side}`, { [placed.shirt]: 1 }, { merchant_rma_ref: ref }));
      const answers = await Promise.all(both.map((one) => portal.push('refunding', one)));
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      const ids = answers.map((answer) => (answer.body as { refund_id: string }).refund_id);
      expect(new Set(ids).size).toBe(2);
      for (const [index, one] of both.entries()) {
        expect(await portal.push('refundid', one)).toEqual({ status: 200, body: { received: true, refund_id: ids[index], state: 'paid' } });
      }
      expect((await orderOf(placed)).lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 2, available: 0 });
    }
  });

  it('control: one RMA with a merchant_rma_ref is refunded under rfd-<merchant_rma_ref>', async () => {
    const placed = await placeOrder();
    const only = rma(placed, `rid-mr-c-${++rounds}`, { [placed.shirt]: 1 }, { merchant_rma_ref: `MR-C-${rounds}` });
    expect((await portal.runRma(only)).final).toEqual({ status: 200, body: { received: true, refund_id: `rfd-MR-C-${rounds}`, state: 'paid' } });
  });
});

describe('review: a refundid push refused is kept for an operator', () => {
  // Refundid has paid by the time it pushes `refundid`. Before: a push refused before the service reached its
  // booking (line items other than those reserved, an order other than the RMA's) was answered 409/422 and not
  // kept anywhere but the access log: the RMA stayed refundid_pending holding the wrong units, and nobody was told.
  it('keeps a refundid push whose line items differ from those reserved, and answers 409', async () => {
    const placed = await placeOrder();
    const id = `rid-changed-${++rounds}`;
    expect((await portal.push('refunding', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(200);
    const changed = await portal.push('refundid', rma(placed, id, { [placed.shirt]: 2 }));
    expect([changed.status, codeOf(changed)]).toEqual([409, 'refund_conflict']);
    expect(await keptNotes(placed)).toEqual([expect.stringContaining(`RMA ${id} refundid: Refundid paid, but`)]);
    // Refundid's retry keeps nothing twice.
    await portal.push('refundid', rma(placed, id, { [placed.shirt]: 2 }));
    expect(await keptNotes(placed)).toHaveLength(1);
  });

  it("keeps a refundid push naming an order we do not have, unmatched, and one naming another order than its RMA on the RMA's order", async () => {
    const id = `rid-nowhere-${++rounds}`;
    const nowhere = await portal.push('refundid', { refundid_id: id, line_items: [{ merchant_order_ref: 'ap21-0', line_item_ref: '1', quantity: 1 }] });
    expect([nowhere.status, codeOf(nowhere)]).toEqual([404, 'order_not_found']);
    const unmatched = (await tableSnapshot(h.stack.dynamo.endpoint)).filter((item) =>
      String((item as { note?: string }).note).startsWith(`RMA ${id} refundid:`),
    );
    expect(unmatched).toEqual([expect.objectContaining({ note: expect.stringContaining('Refundid paid, but the push was refused') })]);

    const placed = await placeOrder();
    const other = await placeOrder();
    const moved = `rid-moved-${++rounds}`;
    expect((await portal.push('refunding', rma(placed, moved, { [placed.shirt]: 1 }))).status).toBe(200);
    const mismatch = await portal.push('refundid', rma(other, moved, { [other.shirt]: 1 }));
    expect([mismatch.status, codeOf(mismatch)]).toEqual([422, 'order_mismatch']);
    expect(await keptNotes(placed)).toEqual([expect.stringContaining(`RMA ${moved} refundid: Refundid paid, but`)]);
  });

  // Before: a `refundid` push our schema refuses (here a line of 0 units beside a real one) was answered 422 and
  // nothing was kept: money Refundid paid, gone without a trace but the access log.
  it('keeps a refundid push the schema refuses, unmatched, once however often Refundid retries it', async () => {
    const placed = await placeOrder();
    const id = `rid-unreadable-${++rounds}`;
    const body = JSON.stringify({
      refundid_id: id,
      status: 'refundid',
      line_items: [
        { merchant_order_ref: placed.orderId, line_item_ref: placed.shirt, quantity: 1 },
        { merchant_order_ref: placed.orderId, line_item_ref: placed.belt, quantity: 0 },
      ],
    });
    const send = () =>
      fetch(`${h.stack.url}/refundid/refund`, {
        method: 'POST',
        headers: { authorization: `Bearer ${String(h.stack.secrets.refundid.bearerToken)}`, 'content-type': 'application/json' },
        body,
      });
    expect((await send()).status).toBe(422);
    expect((await send()).status).toBe(422);
    const kept = (await tableSnapshot(h.stack.dynamo.endpoint)).filter((item) => (item as { raw?: string }).raw === body);
    expect(kept).toEqual([expect.objectContaining({ note: expect.stringContaining('Refundid paid, but the push was refused') })]);
  });

  it('control: a refunding push with other line items is refused 409 and kept nowhere (Refundid pays nothing after it)', async () => {
    const placed = await placeOrder();
    const id = `rid-changed-r-${++rounds}`;
    expect((await portal.push('refunding', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(200);
    const changed = await portal.push('refunding', rma(placed, id, { [placed.shirt]: 2 }));
    expect([changed.status, codeOf(changed)]).toEqual([409, 'refund_conflict']);
    expect(await keptNotes(placed)).toEqual([]);
  });
});

describe('review: Refundid pays for units another channel is about to refund', () => {
  // The customer returned the shirt through Refundid's portal, and Ap21 also shows the return (lodged in Ap21
  // before Refundid's refund was written there): the poller made it a card refund, still waiting for the
  // dispatcher. Refundid pays and pushes `refundid`. Before: the push was answered 409 and kept in the inbox,
  // and nothing stopped the card refund: the dispatcher reversed the card, and the customer was paid twice.
  it('stops a card refund not yet sent, holding it for an operator, so the card is never reversed', async () => {
    const placed = await placeOrder();
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const cardRefundId = `ap21-${ret.returnId}`;
    const intake = h.intake({ ledger: loadAp21LedgerSettings(h.env) });
    const reader = h.client();
    await intake.ingest(
      await reader.getOrder(placed.sim.personId, placed.sim.orderId),
      await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
    );
    expect(await refundOf(placed, cardRefundId)).toMatchObject({ state: 'reversal_pending', channel: 'reversal' });

    const id = `rid-card-${++rounds}`;
    const paid = await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }));
    expect([paid.status, codeOf(paid)]).toEqual([409, 'units_unavailable']);

    await sweep(h.store, queue, Date.now() + 60_000);
    await settle();
    // Before the fix the card was reversed here: 1 payout for units Refundid had paid.
    expect(sims.addonPayments.payouts().get(cardRefundId)).toBeUndefined();
    expect(await refundOf(placed, cardRefundId)).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(`Refundid RMA ${id}`) });
    expect(ledgerViolations(await orderOf(placed))).toEqual([]);
  });

  it('cancels a live Apace offer for those units first, so Apace never pays, and holds the refund for an operator', async () => {
    const placed = await placeOrder({ lastFour: true });
    const ret = h.ap21.addReturn(placed.sim.orderId, {
      lines: [
        { skuId: SHIRT.skuId, quantity: -1 },
        { skuId: BELT.skuId, quantity: -1 },
      ],
    });
    const offerId = `ap21-${ret.returnId}`;
    await h
      .poller({ settings: { watermark: `review-refundid-${++rounds}` }, intake: h.intake({ doorbell: queue, ledger: loadAp21LedgerSettings(h.env) }) })
      .run();
    await settle();
    const offered = (await refundOf(placed, offerId))!;
    expect(offered).toMatchObject({ state: 'offered', channel: 'apace' });

    const id = `rid-apace-${++rounds}`;
    const paid = await portal.push('refundid', rma(placed, id, { [placed.belt]: 1 }));
    expect([paid.status, codeOf(paid)]).toEqual([409, 'units_unavailable']);

    await sweep(h.store, queue, Date.now() + 60_000);
    await settle();
    // Before the fix the offer stayed live and Apace paid the customer's claim.
    expect(await sims.apace.customerAccepts(offered.refs.apaceRefundId!, '7001')).toBe('unavailable');
    await settle();
    expect(sims.payoutsByReference().get(offerId)).toBeUndefined();
    expect(sims.addonPayments.payouts().get(offerId)).toBeUndefined();
    expect(await refundOf(placed, offerId)).toMatchObject({
      state: 'manual_review',
      channel: 'apace',
      refs: { settledElsewhere: expect.stringContaining(`Refundid RMA ${id}`) },
    });
  });

  it('marks a card refund already with an operator (for another reason) with the RMA that paid its units', async () => {
    const placed = await placeOrder();
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const cardRefundId = `ap21-${ret.returnId}`;
    const reader = h.client();
    await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
    const pending = (await refundOf(placed, cardRefundId))!;
    const ctx = { now: new Date().toISOString(), claimWindowMs: 0, reason: 'EPG refused: card expired' };
    expect((await h.store.applyEvent(placed.orderId, cardRefundId, 'review_required', ctx, { actor: 'dispatcher' }, pending)).applied).toBe(true);
    const id = `rid-in-review-${++rounds}`;
    expect((await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(409);
    expect(await refundOf(placed, cardRefundId)).toMatchObject({
      state: 'manual_review',
      reason: 'EPG refused: card expired',
      refs: { settledElsewhere: expect.stringContaining(`Refundid RMA ${id}`) },
    });
  });

  /** A card refund of both shirts of `placed`, created by the intake as the poller does (not dispatched). */
  async function cardRefundOfBothShirts(placed: Placed): Promise<string> {
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const reader = h.client();
    await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
    return `ap21-${ret.returnId}`;
  }

  // Before: a refundid push for units a card reversal already paid was refused and kept, and nothing else: the
  // customer paid twice, told to nobody but the error log. Now the card refund takes the mark (paid_twice_noted), and
  // RefundsPaidTwice (an alarm) tells an operator to recover the money.
  it('marks a card refund already paid for the same units as paid twice', async () => {
    const placed = await placeOrder();
    const cardRefundId = await cardRefundOfBothShirts(placed);
    await sweep(h.store, queue, Date.now() + 60_000);
    await settle();
    expect(await refundOf(placed, cardRefundId)).toMatchObject({ state: 'paid', channel: 'reversal' });
    const id = `rid-after-card-${++rounds}`;
    expect((await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(409);
    expect(await refundOf(placed, cardRefundId)).toMatchObject({ state: 'paid', refs: { settledElsewhere: expect.stringContaining(`Refundid RMA ${id}`) } });
    expect(sims.addonPayments.payouts().get(cardRefundId)).toBe(1);
  });

  // A card reversal already submitted (its answer unknown) cannot be held back, but must never be submitted again.
  it('marks a card reversal already submitted, so it is never submitted again', async () => {
    const placed = await placeOrder();
    const cardRefundId = await cardRefundOfBothShirts(placed);
    const pending = (await refundOf(placed, cardRefundId))!;
    const submitted = await h.store.applyEvent(
      placed.orderId,
      cardRefundId,
      'reversal_submitted',
      { now: new Date().toISOString(), claimWindowMs: 0 },
      { actor: 'dispatcher' },
      pending,
    );
    expect(submitted.applied).toBe(true);
    const id = `rid-in-flight-${++rounds}`;
    expect((await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(409);
    expect(await refundOf(placed, cardRefundId)).toMatchObject({
      state: 'reversal_submitted',
      refs: { settledElsewhere: expect.stringContaining(`Refundid RMA ${id}`) },
    });
  });

  // The dispatcher read the order and is about to claim the card refund when Refundid's push stops it: its claim is
  // refused (the refund moved), it reads again and finds the refund with an operator. Forced with gatedStore.
  it('stops a card refund the dispatcher is about to claim: the claim is refused and the card never reversed', async () => {
    const placed = await placeOrder();
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const cardRefundId = `ap21-${ret.returnId}`;
    const reader = h.client();
    await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
    const id = `rid-vs-dispatcher-${++rounds}`;
    let pushed: { status: number } | undefined;
    const store = gatedStore(h.store, 'reversal_submitted', async () => {
      pushed = await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }));
    });
    const dispatcher = createDispatcher(h.stack.runtime, { ...process.env, ...sims.env }, { store });
    await dispatcher.processOrder(placed.orderId);
    expect(pushed).toMatchObject({ status: 409 });
    expect(sims.addonPayments.payouts().get(cardRefundId)).toBeUndefined();
    expect(await refundOf(placed, cardRefundId)).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(`Refundid RMA ${id}`) });
  });

  // A stage that reverses cards only once Ap21 shows the return received (docs/design.md §2.9): the card refund
  // waits (awaiting_receipt), or waited too long and is with an operator only for that (manual_review, receipt
  // overdue), where a receipt seen later still releases it to the card. Refundid's payment must end both waits.
  describe('on a stage that reverses cards only once the return is received', () => {
    const onReceipt = () => loadAp21LedgerSettings({ ...h.env, AP21_PAY_ON_RECEIPT: 'reversal' });

    async function waitingCardRefund(placed: Placed) {
      const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
      const reader = h.client();
      const ingest = async () =>
        h
          .intake({ ledger: onReceipt(), doorbell: queue })
          .ingest(
            await reader.getOrder(placed.sim.personId, placed.sim.orderId),
            await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
          );
      await ingest();
      const refundId = `ap21-${ret.returnId}`;
      expect(await refundOf(placed, refundId)).toMatchObject({ state: 'awaiting_receipt', channel: 'reversal' });
      return { ret, refundId, ingest };
    }

    async function receivedLater(placed: Placed, waiting: Awaited<ReturnType<typeof waitingCardRefund>>, id: string) {
      h.ap21.setReturnStatus(waiting.ret.returnId, 'Return Received');
      await waiting.ingest();
      // Before the fix the receipt released the overdue one here (reversal_pending), and the card was reversed.
      expect(await refundOf(placed, waiting.refundId)).toMatchObject({ state: 'manual_review' });
      await sweep(h.store, queue, Date.now() + 60_000);
      await settle();
      expect(sims.addonPayments.payouts().get(waiting.refundId)).toBeUndefined();
      expect(await refundOf(placed, waiting.refundId)).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(`Refundid RMA ${id}`) });
    }

    it('stops a card refund waiting for its receipt: the receipt seen later releases nothing', async () => {
      const placed = await placeOrder();
      const waiting = await waitingCardRefund(placed);
      const id = `rid-waiting-${++rounds}`;
      expect((await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(409);
      expect(await refundOf(placed, waiting.refundId)).toMatchObject({ state: 'manual_review' });
      await receivedLater(placed, waiting, id);
    });

    it('stops a card refund in review only because its receipt was overdue: the receipt seen later releases nothing', async () => {
      const placed = await placeOrder();
      const waiting = await waitingCardRefund(placed);
      const overdue = (await refundOf(placed, waiting.refundId))!;
      const later = new Date(Date.parse(overdue.nextAttemptAt!) + 1000).toISOString();
      const reason = `${RECEIPT_OVERDUE_REASON} the stage's wait`;
      expect(
        (
          await h.store.applyEvent(
            placed.orderId,
            waiting.refundId,
            'receipt_overdue',
            { now: later, claimWindowMs: 0, reason },
            { actor: 'dispatcher' },
            overdue,
          )
        ).applied,
      ).toBe(true);
      const id = `rid-overdue-${++rounds}`;
      expect((await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).status).toBe(409);
      await receivedLater(placed, waiting, id);
    });
  });

  it('control: a refunding push for units another channel holds is refused 409 and stops nothing (Refundid pays nothing after it)', async () => {
    const placed = await placeOrder();
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const intake = h.intake({ ledger: loadAp21LedgerSettings(h.env) });
    const reader = h.client();
    await intake.ingest(
      await reader.getOrder(placed.sim.personId, placed.sim.orderId),
      await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
    );
    const refused = await portal.push('refunding', rma(placed, `rid-card-r-${++rounds}`, { [placed.shirt]: 1 }));
    expect([refused.status, codeOf(refused)]).toEqual([409, 'units_unavailable']);
    expect(await refundOf(placed, `ap21-${ret.returnId}`)).toMatchObject({ state: 'reversal_pending' });
  });
});

describe('review: an RMA worth more than any one payment of a split-tender order has left', () => {
  // The order was paid half by one card, half by another; Refundid refunds both shirts (AUD 119.80), more than either
  // payment (AUD 82.40). Before: refundSpec found no single payment covering it and the push was refused 409 —
  // `refunding` (the customer could not use Refundid) as well as `refundid` (money Refundid paid, the units left free
  // for another channel). Now the units are booked, the money against the payment with most left, capped at what it
  // has, and the timeline names the rest for an operator to divide (as docs/design.md §2.7 does for a straddling return).
  it('reserves and books the units, the money capped at the payment with most left, and says what is not booked', async () => {
    const cards = [0, 1].map((n) => ({ origin: 'CreditCard', cardType: 'VISA', stan: `SPLIT-${Date.now()}-${++rounds}-${n}`, amountMinor: 8240 }));
    const sim = h.ap21.addOrder({ email: 'alice@example.com', lines: [SHIRT, BELT], payments: cards });
    expect((await portal.fetchOrder({ shop: 'demo', order_number: sim.orderNumber, email: 'alice@example.com' })).status).toBe(200);
    const placed: Placed = { sim, orderId: `ap21-${sim.orderId}`, shirt: sim.lines[0]!.lineId, belt: sim.lines[1]!.lineId };
    const id = `rid-split-${rounds}`;
    const run = await portal.runRma(rma(placed, id, { [placed.shirt]: 2 }));
    expect(run.reserved).toMatchObject({ status: 200, body: { state: 'refundid_pending' } });
    expect(run.final).toMatchObject({ status: 200, body: { state: 'paid' } });
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 2, available: 0 });
    expect(order.refunds[`rfd-${id}`]!.amount.minor).toBe(8240);
    const created = (await h.store.readTimeline(placed.orderId)).find((entry) => entry.refundId === `rfd-${id}` && entry.event === 'refund_created');
    expect(created?.note).toContain('3740 not booked');
    expect(ledgerViolations(order)).toEqual([]);
  });
});

describe('review: refundid after failed (a status going backwards)', () => {
  // Refundid reported the RMA failed, so its units were released; then it reports it paid after all (a payout it
  // retried). Before: the push was answered 409 and kept, and the units stayed available: a card refund or an Apace
  // offer of the same return paid them a second time. The contradiction is still refused 409 and kept, but the
  // units are booked as paid through Refundid (a refund of their own), or the refund that took them meanwhile is
  // stopped, as for any refundid push for units another channel holds.
  it('books the units again as paid through Refundid, so no other channel pays them', async () => {
    const placed = await placeOrder();
    const id = `rid-back-${++rounds}`;
    const push = rma(placed, id, { [placed.shirt]: 1 });
    expect((await portal.push('refunding', push)).status).toBe(200);
    expect((await portal.push('failed', push)).status).toBe(200);
    const late = await portal.push('refundid', push);
    expect([late.status, codeOf(late)]).toEqual([409, 'transition_rejected']);
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(Object.values(order.refunds).filter((refund) => refund.state === 'paid')).toEqual([
      expect.objectContaining({ channel: 'refundid', source: { kind: 'refundid_rma', ref: id }, lines: { [placed.shirt]: 1 } }),
    ]);
    // Refundid's retry books nothing twice.
    expect((await portal.push('refundid', push)).status).toBe(409);
    expect((await orderOf(placed)).lines[placed.shirt]).toMatchObject({ refunded: 1, available: 1 });
    expect(ledgerViolations(await orderOf(placed))).toEqual([]);
  });

  // Refundid paid after its `failed` and wrote the refund into Ap21; the poller recorded it (the RMA's own refund
  // released, nothing to tie it to) before the late push came. Booking the units again would count the one payout twice.
  it('attaches to the refund the poller recorded from Ap21 meanwhile instead of booking the units twice', async () => {
    const placed = await placeOrder();
    const id = `rid-back-ap21-${++rounds}`;
    const push = rma(placed, id, { [placed.shirt]: 1 });
    expect((await portal.push('refunding', push)).status).toBe(200);
    expect((await portal.push('failed', push)).status).toBe(200);
    const ret = h.ap21.addRefundidReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan: id });
    const reader = h.client();
    await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
    expect((await portal.push('refundid', push)).status).toBe(409);
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(order.refunds[`ap21-${ret.returnId}`]).toMatchObject({ state: 'paid', refs: { refundidId: id } });
  });

  it('stops a card refund that took the released units meanwhile, so the card is never reversed', async () => {
    const placed = await placeOrder();
    const id = `rid-back-card-${++rounds}`;
    const push = rma(placed, id, { [placed.shirt]: 1 });
    expect((await portal.push('refunding', push)).status).toBe(200);
    expect((await portal.push('failed', push)).status).toBe(200);
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const reader = h.client();
    await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
    expect((await portal.push('refundid', push)).status).toBe(409);
    await sweep(h.store, queue, Date.now() + 60_000);
    await settle();
    expect(sims.addonPayments.payouts().get(`ap21-${ret.returnId}`)).toBeUndefined();
    expect(await refundOf(placed, `ap21-${ret.returnId}`)).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(`Refundid RMA ${id}`) });
  });
});

describe('review: an RMA whose compensation_method changes between refunding and refundid', () => {
  const withMethod = (placed: Placed, id: string, method: 'refund' | 'exchange' | 'credit'): Rma => ({
    refundid_id: id,
    line_items: [{ merchant_order_ref: placed.orderId, line_item_ref: placed.shirt, quantity: 1, compensation_method: method }],
  });
  const settleEntry = async (placed: Placed, refundId: string) =>
    (await h.store.readTimeline(placed.orderId)).find((entry) => entry.refundId === refundId && entry.event === 'refundid_refunded');

  // The refund's money is fixed at `refunding`; `refundid` only settles it. Before: an RMA reserved as an exchange
  // (no money) that Refundid then paid as a refund was booked paid with 0, and one reserved as a refund then settled
  // by exchange was booked with the money it never paid, silently: the ledger's money and Refundid's disagreed and
  // nobody was told. The units are settled either way (no other channel may pay them); the disagreement is now named
  // in the timeline entry and logged as an error for an operator.
  it.each<['exchange' | 'credit' | 'refund', 'exchange' | 'credit' | 'refund', number]>([
    ['exchange', 'refund', 0],
    ['refund', 'credit', SHIRT.priceMinor],
  ])('settles the units of an RMA reserved as %s and paid as %s, and names the disagreement', async (reservedAs, paidAs, bookedMinor) => {
    const placed = await placeOrder();
    const id = `rid-method-${++rounds}`;
    expect((await portal.push('refunding', withMethod(placed, id, reservedAs))).status).toBe(200);
    expect(await portal.push('refundid', withMethod(placed, id, paidAs))).toEqual({
      status: 200,
      body: { received: true, refund_id: `rfd-${id}`, state: 'paid' },
    });
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(order.refunds[`rfd-${id}`]).toMatchObject({ state: 'paid', amount: { minor: bookedMinor } });
    expect((await settleEntry(placed, `rfd-${id}`))?.note).toContain(`compensated differently than reserved`);
  });

  it('control: the same method at both pushes settles without a word about it', async () => {
    const placed = await placeOrder();
    const id = `rid-method-same-${++rounds}`;
    expect((await portal.push('refunding', withMethod(placed, id, 'exchange'))).status).toBe(200);
    expect((await portal.push('refundid', withMethod(placed, id, 'exchange'))).status).toBe(200);
    expect((await settleEntry(placed, `rfd-${id}`))?.note).not.toContain('compensated differently');
  });
});

describe('review: pushes of one RMA at once, and a push racing the poller', () => {
  // Passes on main: kept as a regression. Three rounds on fresh orders, so one round whose pushes do not overlap cannot hide a defect.
  it('books one refund when refunding and refundid of a new RMA arrive at once', async () => {
    for (let round = 0; round < 3; round++) {
      const placed = await placeOrder();
      const push = rma(placed, `rid-both-${++rounds}`, { [placed.shirt]: 1 });
      const answers = await Promise.all([portal.push('refunding', push), portal.push('refundid', push), portal.push('refundid', push)]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
      expect(await portal.push('refundid', push)).toMatchObject({ status: 200, body: { state: 'paid' } });
      const order = await orderOf(placed);
      expect(Object.keys(order.refunds)).toEqual([`rfd-${push.refundid_id}`]);
      expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
      expect(ledgerViolations(order)).toEqual([]);
    }
  });

  /** Ap21 shows Refundid's refund of one shirt of `placed` (Stan `stan`), read as the poller reads it. */
  async function refundidReturnRead(placed: Placed, stan: string) {
    const ret = h.ap21.addRefundidReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }], stan });
    const reader = h.client();
    const read = await Promise.all([
      reader.getOrder(placed.sim.personId, placed.sim.orderId),
      reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
    ]);
    return { ret, ingest: () => h.intake({ ledger: loadAp21LedgerSettings(h.env) }).ingest(...read) };
  }

  // Passes on main: kept as a regression. The poller ties Ap21's record of the refund to the RMA reserved at
  // `refunding` and settles it, between the `refundid` push's read and its own settling write.
  it('settles once when the poller ties the Ap21 return to the RMA between the refundid push read and its write', async () => {
    const placed = await placeOrder();
    const id = `rid-vs-poller-${++rounds}`;
    const push = rma(placed, id, { [placed.shirt]: 1 });
    expect((await portal.push('refunding', push)).status).toBe(200);
    const { ret, ingest } = await refundidReturnRead(placed, id);
    let polled: unknown;
    const store = gatedStore(h.store, 'refundid_refunded', async () => {
      polled = await ingest();
    });
    const raw = JSON.stringify({ ...push, status: 'refundid' });
    const answer = await applyRmaPush(store, rmaPushSchema.parse(JSON.parse(raw)), raw, { now: new Date().toISOString(), claimWindowMs: 0 });
    expect(polled).toMatchObject({ kind: 'linked', refundId: `rfd-${id}` });
    expect(answer).toEqual({ received: true, refund_id: `rfd-${id}`, state: 'paid' });
    const order = await orderOf(placed);
    expect(Object.keys(order.refunds)).toEqual([`rfd-${id}`]);
    expect(order.refunds[`rfd-${id}`]!.refs).toMatchObject({ ap21ReturnId: ret.returnId });
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
  });

  // Holds since 9c67b51 (control: with 69a2fae the card refund stays reversal_pending): the poller makes the return lodged in Ap21 a card refund between the
  // refundid push's read and its booking; the booking is refused (units taken), the push reads again and stops it.
  it('stops the card refund the poller created between the refundid push read and its booking', async () => {
    const placed = await placeOrder();
    const ret = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    const reader = h.client();
    const read = await Promise.all([
      reader.getOrder(placed.sim.personId, placed.sim.orderId),
      reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId),
    ]);
    const store = gatedCreateStore(h.store, () => h.intake({ ledger: loadAp21LedgerSettings(h.env) }).ingest(...read));
    const id = `rid-vs-card-${++rounds}`;
    const raw = JSON.stringify({ ...rma(placed, id, { [placed.shirt]: 1 }), status: 'refundid' });
    await expect(applyRmaPush(store, rmaPushSchema.parse(JSON.parse(raw)), raw, { now: new Date().toISOString(), claimWindowMs: 0 })).rejects.toThrow(
      `Refundid paid RMA ${id}`,
    );
    expect(await refundOf(placed, `ap21-${ret.returnId}`)).toMatchObject({ state: 'manual_review', reason: expect.stringContaining(`Refundid RMA ${id}`) });
    await sweep(h.store, queue, Date.now() + 60_000);
    await settle();
    expect(sims.addonPayments.payouts().get(`ap21-${ret.returnId}`)).toBeUndefined();
  });

  /** The refundid push of `push` as Refundid sends it, applied through `store`. */
  const applyRefundid = (store: OrderStore, push: Rma) => {
    const raw = JSON.stringify({ ...push, status: 'refundid' });
    return applyRmaPush(store, rmaPushSchema.parse(JSON.parse(raw)), raw, { now: new Date().toISOString(), claimWindowMs: 0 });
  };

  /** One booking of the payout: the RMA's refund paid and tied to Ap21's return, Ap21's record withdrawn, one shirt refunded. */
  async function expectBookedOnce(placed: Placed, id: string, returnId: string): Promise<void> {
    const order = await orderOf(placed);
    expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    expect(Object.values(order.refunds).filter((refund) => refund.state === 'paid')).toEqual([
      expect.objectContaining({ id: `rfd-${id}`, channel: 'refundid', refs: expect.objectContaining({ ap21ReturnId: returnId }) }),
    ]);
    expect(order.refunds[`ap21-${returnId}`]).toMatchObject({ state: 'released', refs: { refundidId: id, refundidBookedAs: `rfd-${id}` } });
    expect(ledgerViolations(order)).toEqual([]);
  }

  // Before (it.failing since the review): a `refundid` push for an RMA never reserved (its `refunding` lost) and the
  // poller recording Refundid's refund of the same shirt from Ap21 each read the order before the other wrote; the
  // order has a second shirt, so both bookings went through: 2 shirts refunded for one payout, and the customer's later
  // return of the second shirt was refused (no unit left). Now the push reads again after its booking, ties its refund
  // to Ap21's return and withdraws Ap21's record (refundid_record_withdrawn). Control: without `withdrawTwin`, 2 refunded.
  it('books one shirt when a first refundid push and the poller record the same Refundid refund at once', async () => {
    const placed = await placeOrder();
    const id = `rid-first-vs-poller-${++rounds}`;
    const { ret, ingest } = await refundidReturnRead(placed, id);
    let polled: unknown;
    const store = gatedCreateStore(h.store, async () => {
      polled = await ingest();
    });
    expect(await applyRefundid(store, rma(placed, id, { [placed.shirt]: 1 }))).toEqual({ received: true, refund_id: `rfd-${id}`, state: 'paid' });
    expect(polled).toMatchObject({ kind: 'created', refund: { id: `ap21-${ret.returnId}` } });
    await expectBookedOnce(placed, id, ret.returnId);
    // Refundid's retry and the poller's next read change nothing; the customer's later return of the other shirt is refunded.
    expect(await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).toMatchObject({
      status: 200,
      body: { refund_id: `rfd-${id}`, state: 'paid' },
    });
    expect(await ingest()).toMatchObject({ kind: 'already_ingested' });
    await expectBookedOnce(placed, id, ret.returnId);
    const second = h.ap21.addReturn(placed.sim.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const reader = h.client();
    const later = await h
      .intake({ ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, second.returnId));
    expect(later).toMatchObject({ kind: 'created', refund: { lines: { [placed.shirt]: 1 } } });
  });

  // The reverse interleaving: the poller's read, then the push's booking, then the poller's write. The poller reads
  // again after its write, ties the RMA's refund to the return and withdraws its own record. Control: without the
  // check after the create in ReturnIntake.ingest, 2 shirts refunded.
  it('books one shirt when the refundid push books between the poller read and its write', async () => {
    const placed = await placeOrder();
    const id = `rid-poller-vs-first-${++rounds}`;
    const { ret } = await refundidReturnRead(placed, id);
    let pushed: unknown;
    const gated = gatedCreateStore(h.store, async () => {
      pushed = await applyRefundid(h.store, rma(placed, id, { [placed.shirt]: 1 }));
    });
    const reader = h.client();
    const polled = await h
      .intake({ store: gated, ledger: loadAp21LedgerSettings(h.env) })
      .ingest(await reader.getOrder(placed.sim.personId, placed.sim.orderId), await reader.getReturn(placed.sim.personId, placed.sim.orderId, ret.returnId));
    await expectBookedOnce(placed, id, ret.returnId);
    expect(pushed).toEqual({ received: true, refund_id: `rfd-${id}`, state: 'paid' });
    expect(polled).toEqual({ kind: 'linked', orderId: placed.orderId, refundId: `rfd-${id}` });
  });

  // The push fails after tying its refund to the return and before withdrawing Ap21's record (a crash, a timeout): both
  // bookings stand for a moment. Refundid retries a push not answered 200, and the poller reads the return again on
  // its next overlapping run: either finishes the withdrawal. Control: without the check on a repeat push (paid()) or
  // in the intake's rounds before `known`, 2 shirts stay refunded.
  it.each(["Refundid's retry of the push", "the poller's next read"])('finishes a withdrawal cut short by a failure: %s', async (by) => {
    const placed = await placeOrder();
    const id = `rid-cut-short-${++rounds}`;
    const { ret, ingest } = await refundidReturnRead(placed, id);
    const failing = gatedStore(h.store, 'refundid_record_withdrawn', () => Promise.reject(new Error('the Lambda timed out')));
    const store = gatedCreateStore(failing, async () => {
      await ingest();
    });
    await expect(applyRefundid(store, rma(placed, id, { [placed.shirt]: 1 }))).rejects.toThrow('the Lambda timed out');
    expect((await orderOf(placed)).lines[placed.shirt]).toMatchObject({ refunded: 2, available: 0 });
    const answer = by === "the poller's next read" ? await ingest() : (await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).body;
    await expectBookedOnce(placed, id, ret.returnId);
    expect(answer).toMatchObject(by === "the poller's next read" ? { kind: 'linked', refundId: `rfd-${id}` } : { refund_id: `rfd-${id}`, state: 'paid' });
  });

  // The same race one push earlier: the `refunding` push reserves the shirt while the poller records Refundid's refund
  // of it from Ap21, neither seeing the other. The `refundid` push that settles the reservation reads again and
  // withdraws the record. Control: without withdrawTwin after the settle, 2 shirts refunded.
  it('books one shirt when a refunding push and the poller record the same payout at once, once refundid settles it', async () => {
    const placed = await placeOrder();
    const id = `rid-reserved-vs-poller-${++rounds}`;
    const { ret, ingest } = await refundidReturnRead(placed, id);
    const store = gatedCreateStore(h.store, async () => {
      await ingest();
    });
    const raw = JSON.stringify({ ...rma(placed, id, { [placed.shirt]: 1 }), status: 'refunding' });
    const reserved = await applyRmaPush(store, rmaPushSchema.parse(JSON.parse(raw)), raw, { now: new Date().toISOString(), claimWindowMs: 0 });
    expect(reserved).toMatchObject({ state: 'refundid_pending' });
    expect(await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).toMatchObject({
      status: 200,
      body: { refund_id: `rfd-${id}`, state: 'paid' },
    });
    await expectBookedOnce(placed, id, ret.returnId);
  });

  // Push and poller at once over dynalite, no gate: whichever interleaving each round takes, one booking. Five rounds on
  // fresh orders, so a round whose two sides happen not to overlap cannot hide a defect. Control: without both checks,
  // rounds end with 2 shirts refunded.
  it('books one shirt in every round of a refundid push and the poller recording the same payout at once', async () => {
    for (let round = 0; round < 5; round++) {
      const placed = await placeOrder();
      const id = `rid-at-once-poller-${++rounds}`;
      const { ingest } = await refundidReturnRead(placed, id);
      const [pushed] = await Promise.all([portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 })), ingest()]);
      expect(pushed).toMatchObject({ status: 200, body: { state: 'paid' } });
      const order = await orderOf(placed);
      expect(order.lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
      expect(Object.values(order.refunds).filter((refund) => refund.state === 'paid')).toHaveLength(1);
      expect(ledgerViolations(order)).toEqual([]);
      // Whichever side wrote first, the survivor is the one the other attached to, and a retry books nothing more.
      expect(await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).toMatchObject({ status: 200, body: { state: 'paid' } });
      expect(await ingest()).toMatchObject({ kind: expect.stringMatching(/^(already_ingested|linked)$/) });
      expect((await orderOf(placed)).lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
    }
  });

  it('control: the same push and poller one after the other book one shirt (the push attaches to the record)', async () => {
    const placed = await placeOrder();
    const id = `rid-first-then-poller-${++rounds}`;
    const { ingest } = await refundidReturnRead(placed, id);
    await ingest();
    expect(await portal.push('refundid', rma(placed, id, { [placed.shirt]: 1 }))).toMatchObject({ status: 200, body: { state: 'paid' } });
    expect((await orderOf(placed)).lines[placed.shirt]).toMatchObject({ reserved: 0, refunded: 1, available: 1 });
  });
});

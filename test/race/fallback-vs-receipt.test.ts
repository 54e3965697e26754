import { ledgerViolations } from '../../lambdas/domain/order';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import { sweep } from '../../lambdas/services/sweeper';
import { startPayoutWorld, type PayoutWorld } from '../support/harness/relay-with-ap21';
import type { OrderStore } from '../../lambdas/store/order-store';
import { gatedStore } from '../support/gated-store';

/**
 * docs/design.md §2.9, fallback from Apace: a stage pays Apace when the return is seen and reverses
 * EPG cards only once Ap21 shows it received. An Apace refund whose offer ran out falls back to the
 * card at the moment a read of Ap21 finds the return received. Real concurrent calls over dynalite
 * and the simulators: whichever write wins, the card is reversed exactly once and nothing waits for
 * a receipt already seen.
 */
const RULES = { AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_CARD_LAST_FOUR_FIELD: 'Reference' };
const JACKET = { skuId: '71001', quantity: 1, priceMinor: 9000, productName: 'JACKET' };
const POLICY = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 };

let world: PayoutWorld;
let watermarks = 0;
beforeAll(async () => {
  world = await startPayoutWorld(RULES);
});
afterAll(() => world.close());
beforeEach(() => world.h.newEra());

/** An Apace refund of a jacket whose return was seen eleven days ago (its ten-day offer ran out), nothing dispatched yet. */
async function fallenDue() {
  const { h, sims } = world;
  const card = {
    origin: 'CreditCard',
    cardType: 'VISA',
    stan: `FR-${Date.now()}-${++watermarks}`,
    reference: '************7001',
    amountMinor: JACKET.priceMinor,
  };
  const order = h.ap21.addOrder({ lines: [JACKET], payments: [card] });
  sims.addonPayments.seedTransaction(card.stan, { amount: { minor: card.amountMinor, currency: 'AUD' }, paymentSolution: 'creditcards' });
  const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: JACKET.skuId, quantity: -1 }] });
  const seen = Date.now() - 11 * 86_400_000;
  const ledger = loadAp21LedgerSettings({ ...h.env, ...RULES });
  await h.poller({ settings: { watermark: `fallback-race-${watermarks}` }, intake: h.intake({ ledger, now: () => seen }) }).run();
  const orderId = `ap21-${order.orderId}`;
  const refundId = `ap21-${ret.returnId}`;
  expect((await h.store.getOrder(orderId))!.refunds[refundId]).toMatchObject({ state: 'offer_pending', channel: 'apace' });
  // The warehouse receives the jacket; the read that sees it races the dispatcher's fallback.
  h.ap21.setReturnStatus(ret.returnId, 'Return Received');
  const client = h.client();
  const [ap21Order, ap21Return] = await Promise.all([
    client.getOrder(order.personId, order.orderId),
    client.getReturn(order.personId, order.orderId, ret.returnId),
  ]);
  const readReceipt = (store: OrderStore = h.store) => h.intake({ store, ledger, doorbell: world.queue }).ingest(ap21Order, ap21Return);
  return { orderId, refundId, readReceipt, paid: () => sims.payoutsByReference().get(refundId) };
}

function dispatcherOver(store: OrderStore): Dispatcher {
  return createDispatcher(world.h.stack.runtime, { ...process.env, ...world.sims.env }, { store, policy: POLICY });
}

/** What the stage's own loop does next: the sweeper finds what is due, the queue dispatches it. */
async function settle() {
  await world.queue.drained();
  await sweep(world.h.store, world.queue, Date.now());
  await world.queue.drained();
}

async function expectReversedOnce({ orderId, refundId, paid }: Awaited<ReturnType<typeof fallenDue>>) {
  await settle();
  const stored = await world.h.store.getOrder(orderId);
  expect(stored!.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'reversal', refs: { returnReceivedAt: expect.any(String) } });
  expect(ledgerViolations(stored!)).toEqual([]);
  expect(paid()).toBe(1);
}

describe('an Apace refund falling back to the card while a read of Ap21 finds its return received', () => {
  it('reverses the card once when the receipt is noted between the fallback and its wait: the wait is refused', async () => {
    const due = await fallenDue();
    let read: unknown;
    // The dispatcher has left Apace and decided to wait; before its write, the read notes the receipt.
    const dispatcher = dispatcherOver(
      gatedStore(world.h.store, 'fallback_awaits_receipt', async () => {
        read = await due.readReceipt();
      }),
    );
    const steps = await dispatcher.processOrder(due.orderId);
    expect(read).toMatchObject({ kind: 'already_ingested' });
    expect(steps).toEqual([expect.objectContaining({ action: expect.stringContaining('not moved to wait for the receipt (superseded)') })]);
    await expectReversedOnce(due);
  });

  it('reverses the card once when the fallback waits between the read and its note: the read looks again and releases it', async () => {
    const due = await fallenDue();
    // The read saw the refund on Apace and is about to note the receipt; meanwhile the fallback moves it to wait.
    const read = await due.readReceipt(
      gatedStore(world.h.store, 'return_received_noted', async () => {
        const steps = await dispatcherOver(world.h.store).processOrder(due.orderId);
        expect(steps).toEqual([expect.objectContaining({ action: expect.stringContaining('awaiting the receipt') })]);
      }),
    );
    expect(read).toMatchObject({ kind: 'received' });
    await expectReversedOnce(due);
  });

  it('reverses the card once whichever of the two concurrent calls writes first', async () => {
    const rounds = await Promise.all([1, 2, 3, 4].map(() => fallenDue()));
    await Promise.all(rounds.flatMap((due) => [dispatcherOver(world.h.store).processOrder(due.orderId), due.readReceipt()]));
    for (const due of rounds) await expectReversedOnce(due);
  });
});

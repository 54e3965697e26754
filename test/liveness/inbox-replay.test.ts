import { refundReason } from '../../lambdas/providers/paypro/client';
import type { PayProSecret } from '../../lambdas/providers/paypro/schemas';
import { INBOX_REPLAY_AFTER_MS, replayInbox } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import { orderWithRefund } from '../support/fixtures';
import { startApaceLivenessWorld, type ApaceLivenessWorld } from '../support/harness/relay-with-apace-and-epg';
import { signedPayProIpn } from '../support/inbound';

let world: ApaceLivenessWorld;
let store: OrderStore;
beforeAll(async () => {
  world = await startApaceLivenessWorld({ PAYPRO_IPN_SOURCE_IPS: '127.0.0.1' });
  store = world.stack.runtime.store;
});
afterAll(() => world.close());

/** A PayPro order and a refund of it whose DoRefund answer never came back (submitted, waiting). */
async function submittedPayProRefund(orderId: string, payProOrderId: number) {
  const now = new Date().toISOString();
  const { refundId } = await orderWithRefund(
    store,
    orderId,
    { provider: 'paypro', transactionId: String(payProOrderId) },
    { valueMinor: 4990, now, actor: 'ap21', source: { kind: 'ap21_return', ref: `${orderId}-r1` } },
  );
  // As the dispatcher does before PayPro first hears the refund id (its one owner).
  await store.linkReference('refund', refundId, { orderId }, now);
  // Far in the future: no dispatcher follow-up interferes, only the IPN can settle it.
  await store.applyEvent(
    orderId,
    refundId,
    'reversal_submitted',
    { now, claimWindowMs: 0, nextAttemptAt: '2099-01-01T00:00:00.000Z' },
    { actor: 'dispatcher' },
  );
  return refundId;
}

function signedIpn(payProOrderId: number, refundId: string): string {
  const ipn = signedPayProIpn(world.stack.secrets.paypro as unknown as PayProSecret, {
    ORDER_ID: String(payProOrderId),
    ORDER_TOTAL_AMOUNT: '49.90',
    ORDER_CURRENCY_CODE: 'AUD',
    IS_RESENT: '0',
    REFUND_ISSUED_BY: 'Vendor',
    ACTION_REASON: refundReason({ refundId, description: 'Customer return' }),
    CUSTOMER_EMAIL: `c${payProOrderId}@example.com`,
  });
  return new URLSearchParams(ipn).toString();
}

describe('nothing stored is forgotten: the sweeper applies what a crash left stored but not applied', () => {
  it('a PayPro IPN stored before the process died settles its refund at the next sweep after a minute, once', async () => {
    const refundId = await submittedPayProRefund('replay-pp', 810_001);
    // The process dies between storing the IPN and applying it: PayPro sees a 500.
    const applyEvent = store.applyEvent.bind(store);
    store.applyEvent = () => Promise.reject(new Error('process killed'));
    const response = await fetch(`${world.stack.url}/providers/paypro/ipn`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: signedIpn(810_001, refundId),
    });
    store.applyEvent = applyEvent;
    expect(response.status).toBe(500);
    expect((await store.getOrder('replay-pp'))!.refunds[refundId]!.state).toBe('reversal_submitted');

    // Its own request may still be applying it for a minute; after that the sweeper does.
    expect(await replayInbox(world.inbox, Date.now())).toMatchObject({ replayed: 0 });
    expect(await replayInbox(world.inbox, Date.now() + INBOX_REPLAY_AFTER_MS + 1_000)).toMatchObject({ replayed: 1, waiting: 0 });
    const order = (await store.getOrder('replay-pp'))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(order.timeline.filter((entry) => entry.to === 'paid')).toHaveLength(1);
    expect(await replayInbox(world.inbox, Date.now() + INBOX_REPLAY_AFTER_MS + 2_000)).toMatchObject({ replayed: 0 });
    expect((await store.getOrder('replay-pp'))!.version).toBe(order.version);
  });
});

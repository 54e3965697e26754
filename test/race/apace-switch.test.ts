import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import type { TransitionOutcome } from '../../lambdas/store/order-store';
import { apaceUrls, apaceWebhook, offeredRefund, postWebhook } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let apace: ApaceSecret;
beforeAll(async () => {
  stack = await startTestStack();
  apace = stack.secrets.apace as ApaceSecret;
});
afterAll(() => stack.close());

type Start = 'switch-first' | 'verify-first' | 'together';

/**
 * One refund, 50 Apace verification calls through the real handler and 50 attempts by the sweeper to
 * switch the offer to card reversal. Whoever the table serializes first wins, and only one can.
 */
async function race(orderId: string, start: Start) {
  const { refundId } = await offeredRefund(stack.runtime.store, orderId);
  const { verificationUrl, notificationUrl } = apaceUrls(stack.url, apace, orderId, refundId);
  const { store, claimWindowMs } = stack.runtime;
  const verify = async () => (await (await fetch(verificationUrl)).json()) as { allow_refund: boolean; refund_issued?: boolean };
  const switchOver = () =>
    store.applyEvent(
      orderId,
      refundId,
      'offer_cancel_started',
      { now: new Date().toISOString(), claimWindowMs, reason: 'offer expired' },
      { actor: 'sweeper' },
    );
  const fire = <T>(n: number, fn: () => Promise<T>) => Array.from({ length: n }, fn);

  let verifications: Promise<{ allow_refund: boolean }>[];
  let switches: Promise<TransitionOutcome>[];
  if (start === 'together') {
    verifications = fire(50, verify);
    switches = fire(50, switchOver);
  } else if (start === 'switch-first') {
    // The rest are fired while the first switch is still in flight or just done: still a race.
    switches = fire(50, switchOver);
    await Promise.race(switches);
    verifications = fire(50, verify);
  } else {
    verifications = fire(50, verify);
    await Promise.race(verifications);
    switches = fire(50, switchOver);
  }
  const answers = await Promise.all(verifications);
  const outcomes = await Promise.all(switches);
  return { refundId, notificationUrl, verificationUrl, answers, outcomes };
}

describe('verification claims racing the switch to card reversal', () => {
  const rounds: Start[] = ['switch-first', 'verify-first', 'together', 'switch-first', 'verify-first', 'together', 'together', 'together'];

  it.each(rounds.map((start, i) => [i, start] as const))('round %d (%s): exactly one channel wins and pays', async (round, start) => {
    const orderId = `race-${round}`;
    const { refundId, notificationUrl, verificationUrl, answers, outcomes } = await race(orderId, start);
    const allowed = answers.filter((a) => a.allow_refund).length;
    const switched = outcomes.filter((o) => o.applied).length;

    expect(switched).toBeLessThanOrEqual(1);
    // Apace was told yes only if it asked before the switch, and then the switch must have been refused.
    expect(switched === 1).toBe(allowed === 0);
    if (start === 'switch-first') expect(switched).toBe(1);
    if (start === 'verify-first') expect(allowed).toBeGreaterThan(0);
    const afterRace = (await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!;
    expect(afterRace.verifications).toBe(50);
    expect(afterRace.state).toBe(switched ? 'offer_cancelling' : 'offered');

    // Drive the winner to its payout and let the loser try: the loser must be refused.
    const { store, claimWindowMs } = stack.runtime;
    const ctx = () => ({ now: new Date().toISOString(), claimWindowMs });
    if (switched) {
      for (const event of ['offer_cancelled', 'reversal_submitted', 'reversal_succeeded'] as const) {
        expect((await store.applyEvent(orderId, refundId, event, ctx(), { actor: 'dispatcher' })).applied).toBe(true);
      }
      expect(await (await fetch(verificationUrl)).json()).toEqual({ allow_refund: false, refund_issued: true });
    } else {
      expect((await postWebhook(notificationUrl, apaceWebhook(orderId, 'pending'), apace.apiSecret)).status).toBe(200);
      expect((await store.applyEvent(orderId, refundId, 'offer_cancel_started', ctx(), { actor: 'sweeper' })).applied).toBe(false);
      expect((await store.applyEvent(orderId, refundId, 'reversal_submitted', ctx(), { actor: 'dispatcher' })).applied).toBe(false);
    }
    const order = (await store.getOrder(orderId))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: switched ? 'reversal' : 'apace' });
    expect(order.lines['1']).toMatchObject({ purchased: 2, reserved: 0, refunded: 1, available: 1 });
    expect(order.timeline.filter((entry) => entry.to === 'paid')).toHaveLength(1);
  });
});

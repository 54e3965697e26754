import { createHash } from 'node:crypto';
import { logger } from '../commons/logger';
import type { PaymentProvider } from '../domain/order';
import { settledElsewhere, type Refund, type RefundEvent, type RefundState, type TransitionContext } from '../domain/refund';
import { StoreContentionError, type Actor, type OrderStore, type StoredOrder } from '../store/order-store';
import { reportPaidTwice } from './paid-twice';

/**
 * What a provider tells us about a card reversal, after its route authenticated and validated the
 * message: stored first (idempotently), then acted on. Only proof moves money state: PayPro's
 * signed IPN, or Optty's transaction details re-read over its authenticated API. An unverifiable
 * message (EPG, Optty's own notification) is a hint: at most it brings the dispatcher's follow-up
 * of a submitted reversal forward.
 */
export interface NotificationContext extends TransitionContext {
  /** The dispatcher's lease on a claimed provider call (DISPATCH_LEASE_MS). */
  readonly leaseMs: number;
}

export interface Located {
  readonly order: StoredOrder;
  readonly refund: Refund;
}

/**
 * States in which a provider's proof of payment settles the reversal: the answer to our call was
 * still awaited (`reversal_succeeded`), or our calls concluded otherwise (`reversal_confirmed`).
 */
const PROOF_EVENTS: Partial<Record<RefundState, RefundEvent>> = {
  reversal_submitted: 'reversal_succeeded',
  reversal_pending: 'reversal_confirmed',
  manual_review: 'reversal_confirmed',
};
export const CONFIRMABLE: ReadonlySet<RefundState> = new Set(Object.keys(PROOF_EVENTS) as RefundState[]);

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Longer than any refund id we create, and short enough to stay a valid table key. */
const MAX_REFUND_ID_LENGTH = 256;

/** Our refund by its id, through the link the dispatcher writes before a provider first hears the id. */
export async function locateRefund(store: OrderStore, refundId: string): Promise<Located | undefined> {
  if (refundId.length > MAX_REFUND_ID_LENGTH) return undefined;
  const target = await store.findReference('refund', refundId);
  const order = target && (await store.getOrder(target.orderId));
  const refund = order && Object.hasOwn(order.refunds, refundId) ? order.refunds[refundId] : undefined;
  return order && refund ? { order, refund } : undefined;
}

export const paidBy = (located: Located, provider: PaymentProvider) => located.order.payments[located.refund.paymentId]?.provider === provider;

export async function settle(
  store: OrderStore,
  located: Located,
  ctx: TransitionContext,
  actor: Actor,
  raw: string,
  note: string,
  refs: Record<string, string> = {},
): Promise<void> {
  const { order } = located;
  let refund = located.refund;
  // The dispatcher may move the refund between our read and our write; the proof then applies
  // to the state it moved to. Bounded: each round follows a change someone else made.
  for (let round = 0; round < 3; round++) {
    const event = refund.channel === 'reversal' ? PROOF_EVENTS[refund.state] : undefined;
    if (!event) break;
    const outcome = await store.applyEvent(order.orderId, refund.id, event, { ...ctx, refs }, { actor, raw, note }, refund);
    if (outcome.applied) {
      // Ap21 showed the return settled elsewhere (guard mark_as_seen: a proof read before the mark is applied again knowing it).
      const twice = settledElsewhere(outcome.refund);
      if (twice !== undefined) reportPaidTwice(order.orderId, refund.id, twice);
      return;
    }
    refund = outcome.refund;
  }
  if (refund.state === 'paid' && refund.channel === 'reversal') return;
  // Still bookable, only overtaken every round: not applied, so the caller must not mark the proof
  // done. Contention is answered as retryable: it stays pending for the sender's retry and the sweeper's replay.
  if (refund.channel === 'reversal' && PROOF_EVENTS[refund.state]) {
    throw new StoreContentionError(`refund ${refund.id} kept changing while ${actor}'s proof of payment was applied; it is applied on the next try`);
  }
  // The provider paid a refund we no longer hold (released, or paid through another channel).
  logger.error('provider reports a reversal paid that refund-relay cannot book', {
    order_id: order.orderId,
    refund_id: refund.id,
    provider: actor,
    state: refund.state,
    channel: refund.channel,
  });
}

/**
 * Brings the follow-up of a submitted reversal forward to now, but never to less than one lease
 * after the refund last changed: a dispatcher that has just claimed the call keeps it, and a flood
 * of hints cannot make the dispatcher ask the provider more often than once per lease.
 */
export async function followUpSooner(store: OrderStore, located: Located, ctx: NotificationContext, actor: Actor, note: string): Promise<void> {
  const { order, refund } = located;
  if (refund.state !== 'reversal_submitted') return;
  const nextAttemptAt = new Date(Math.max(Date.parse(ctx.now), Date.parse(refund.updatedAt) + ctx.leaseMs)).toISOString();
  if (refund.nextAttemptAt !== undefined && refund.nextAttemptAt <= nextAttemptAt) return;
  await store.applyEvent(order.orderId, refund.id, 'rescheduled', { now: ctx.now, claimWindowMs: ctx.claimWindowMs, nextAttemptAt }, { actor, note }, refund);
}

import { createHash } from 'node:crypto';
import { logger } from '../commons/logger';
import { verificationAnswer, type Refund, type RefundEvent, type TransitionContext, type VerificationAnswer } from '../domain/refund';
import { RefundNotFoundError, OrderNotFoundError } from '../domain/errors';
import { notificationKind, type ApaceNotification } from '../providers/apace/schemas';
import type { OrderStore, TransitionOutcome } from '../store/order-store';

export interface RefundIds {
  readonly orderId: string;
  readonly refundId: string;
}

/** Apace asks whether it may pay: record the claim and answer from the refund's state, in one write. */
export async function answerVerification(store: OrderStore, ids: RefundIds, now: string): Promise<VerificationAnswer> {
  const view = await store.recordVerification(ids.orderId, ids.refundId, now);
  return verificationAnswer(view, now);
}

export interface NotificationResult {
  readonly applied: boolean;
  readonly refund: Refund;
}

function paymentEvent(refund: Refund, kind: 'pending' | 'processed'): RefundEvent {
  if (refund.state === 'manual_review') return 'apace_paid_after_review';
  return kind === 'processed' ? 'apace_processed' : 'apace_paid';
}

/**
 * Apace reports a payout: `pending` marks the refund paid (Apace's advice, so nothing else pays it),
 * `processed` also confirms it. Either order, duplicates and retries converge on the same state;
 * a message that changes nothing is kept once in the inbox, and one claiming a payout for a refund
 * another channel already paid is logged as an error for on-call.
 */
export async function applyApaceNotification(
  store: OrderStore,
  ids: RefundIds,
  notification: ApaceNotification,
  raw: string,
  ctx: TransitionContext,
): Promise<NotificationResult> {
  const order = await store.getOrder(ids.orderId);
  if (!order) throw new OrderNotFoundError(`order ${ids.orderId} not found`);
  const current = order.refunds[ids.refundId];
  if (!current) throw new RefundNotFoundError(`refund ${ids.refundId} not found on order ${ids.orderId}`);

  const kind = notificationKind(notification);
  const audit = { actor: 'apace' as const, raw, note: `Apace refund ${notification.refund_id}: ${kind}` };
  let outcome: TransitionOutcome = { applied: false, why: 'wrong_state', refund: current };
  if (kind !== 'failed') {
    outcome = await store.applyEvent(ids.orderId, ids.refundId, paymentEvent(current, kind), ctx, audit, current);
    const paidByApace = outcome.refund.state === 'paid' && outcome.refund.channel === 'apace';
    if (kind === 'processed' && paidByApace && !outcome.refund.confirmedAt) {
      const confirmed = await store.applyEvent(ids.orderId, ids.refundId, 'apace_confirmed', ctx, audit, outcome.refund);
      if (confirmed.applied) outcome = confirmed;
    }
  }
  if (outcome.applied) return { applied: true, refund: outcome.refund };

  const { refund } = outcome;
  const note = `Apace ${kind} not applied: refund is ${refund.state} via ${refund.channel}${outcome.why === 'already_applied' ? ' (duplicate)' : ''}`;
  await store.recordInbound(ids.orderId, { source: 'apace', key: createHash('sha256').update(raw).digest('hex'), raw, note }, ctx.now);
  // Apace moved money we could not book (the refund was released, reversed or is with another
  // channel), or reports a failed payout: either way an operator must look.
  const duplicate = refund.state === 'paid' && refund.channel === 'apace';
  if (kind === 'failed' || !duplicate) {
    logger.error('Apace notification needs an operator', { order_id: ids.orderId, refund_id: ids.refundId, kind, state: refund.state, channel: refund.channel });
  }
  return { applied: false, refund };
}

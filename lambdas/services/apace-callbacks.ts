import { createHash } from 'node:crypto';
import { logger } from '../commons/logger';
import { verificationAnswer, type Refund, type RefundEvent, type TransitionContext, type VerificationAnswer } from '../domain/refund';
import { RefundNotFoundError, OrderNotFoundError } from '../domain/errors';
import { own } from '../domain/order';
import { emitMetric } from '../commons/metrics';
import { notificationKind, type ApaceNotification } from '../providers/apace/schemas';
import { StoreContentionError, type Audit, type OrderStore, type TransitionOutcome } from '../store/order-store';

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
 * `processed` also confirms it; `failed` after `pending` puts it back in an operator's hands. Either
 * order, duplicates and retries converge on the same state. When the refund changes under us the
 * event is decided again from its fresh state; a message that changes nothing is kept once in the
 * inbox, and one that reports money we cannot book is logged as an error for on-call.
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
  const current = own(order.refunds, ids.refundId);
  if (!current) throw new RefundNotFoundError(`refund ${ids.refundId} not found on order ${ids.orderId}`);

  const kind = notificationKind(notification);
  const audit = { actor: 'apace' as const, raw, note: `Apace refund ${notification.refund_id}: ${kind}` };
  const decide = (refund: Refund): RefundEvent => (kind === 'failed' ? 'apace_failed' : paymentEvent(refund, kind));
  let outcome = await applyDeciding(store, ids, current, decide, ctx, audit);
  if (kind === 'processed' && outcome.refund.state === 'paid' && outcome.refund.channel === 'apace' && !outcome.refund.confirmedAt) {
    const confirmed = await applyDeciding(store, ids, outcome.refund, () => 'apace_confirmed', ctx, audit);
    if (confirmed.applied) outcome = confirmed;
  }
  if (outcome.applied) {
    if (outcome.refund.state === 'manual_review') {
      logger.error('Apace reports a failed payout after pending: the refund needs manual review', { order_id: ids.orderId, refund_id: ids.refundId });
      emitMetric('RefundsInManualReview', 1);
    }
    return { applied: true, refund: outcome.refund };
  }

  const { refund } = outcome;
  const note = `Apace ${kind} not applied: refund is ${refund.state} via ${refund.channel}${outcome.why === 'already_applied' ? ' (duplicate)' : ''}`;
  await store.recordInbound(ids.orderId, { source: 'apace', key: createHash('sha256').update(raw).digest('hex'), raw, note }, ctx.now);
  // Apace moved money we could not book (the refund was released, reversed or is with another
  // channel), or reports a failure we could not apply: either way an operator must look.
  const duplicate = refund.state === 'paid' && refund.channel === 'apace' && kind !== 'failed';
  if (!duplicate)
    logger.error('Apace notification needs an operator', {
      order_id: ids.orderId,
      refund_id: ids.refundId,
      kind,
      state: refund.state,
      channel: refund.channel,
    });
  return { applied: false, refund };
}

/** Applies the event `decide` picks for the refund, deciding again if the refund changed under us. */
async function applyDeciding(
  store: OrderStore,
  ids: RefundIds,
  snapshot: Refund,
  decide: (refund: Refund) => RefundEvent,
  ctx: TransitionContext,
  audit: Audit,
): Promise<TransitionOutcome> {
  let refund = snapshot;
  for (let attempt = 0; attempt < 5; attempt++) {
    const outcome = await store.applyEvent(ids.orderId, ids.refundId, decide(refund), ctx, audit, refund);
    if (outcome.applied || outcome.why !== 'superseded') return outcome;
    refund = outcome.refund;
  }
  // Answering 503 makes Apace deliver again later rather than lose the payout.
  throw new StoreContentionError(`refund ${ids.refundId} kept changing while booking an Apace notification`);
}

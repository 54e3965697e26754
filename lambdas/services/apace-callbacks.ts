import { createHash } from 'node:crypto';
import { InvalidInputError } from '../commons/application-errors';
import { logger } from '../commons/logger';
import { apacePayoutFailed, verificationDecision, type Refund, type RefundEvent, type TransitionContext, type VerificationDecision } from '../domain/refund';
import { RefundNotFoundError, OrderNotFoundError } from '../domain/errors';
import { own, type Order } from '../domain/order';
import { emitMetric } from '../commons/metrics';
import { notificationKind, type ApaceNotification } from '../providers/apace/schemas';
import { StoreContentionError, type Audit, type OrderStore, type TransitionOutcome } from '../store/order-store';
import { apaceOrderId, type ApaceOffers } from './apace-offers';
import { reportApacePaidTwice } from './paid-twice';

export interface RefundIds {
  readonly orderId: string;
  readonly refundId: string;
}

/** Apace asks whether it may pay: record the claim and decide from the refund's state, in one write. */
export async function decideVerification(store: OrderStore, ids: RefundIds, now: string): Promise<VerificationDecision> {
  const view = await store.recordVerification(ids.orderId, ids.refundId, now);
  return verificationDecision(view, now);
}

export interface NotificationResult {
  readonly applied: boolean;
  readonly refund: Refund;
  /** Stored in the inbox until Apace's own record is read (`checkApaceRecord`): it contradicts what we know. */
  readonly awaitingCheck?: true;
}

/** Apace's record of an offer, as the sweeper reads it (`GET /ext/refunds/:id`). */
export type ApaceRecord = Pick<ApaceOffers, 'status'>;

export type ApaceKind = ReturnType<typeof notificationKind>;

export const apaceInboxKey = (raw: string) => createHash('sha256').update(raw).digest('hex');

function paymentEvent(refund: Refund, kind: 'pending' | 'processed'): RefundEvent {
  if (refund.state === 'manual_review') return 'apace_paid_after_review';
  return kind === 'processed' ? 'apace_processed' : 'apace_paid';
}

function failureEvent(refund: Refund): RefundEvent {
  return refund.state === 'paid' ? 'apace_payout_failed' : 'apace_offer_failed';
}

/**
 * Whether a webhook contradicts what we know, so that Apace's own record must be read before
 * anything changes (docs/design.md §2.5): `pending` or `processed` after `failed`, `failed` after
 * `processed`, and anything for a refund no longer on the Apace channel (an offer we cancelled).
 */
export function contradicts(refund: Refund, kind: ApaceKind): boolean {
  if (apacePayoutFailed(refund)) return kind !== 'failed';
  if (refund.channel !== 'apace' || refund.state === 'released') return true;
  return kind === 'failed' && refund.confirmedAt !== undefined;
}

/**
 * Apace reports a payout. Storage first (docs/design.md §2.4): the message is kept in the inbox as
 * pending, then applied, then marked processed; one stored but never applied (a crash between the
 * two) is applied again by the sweeper. `pending` marks the refund paid (Apace's advice, so
 * nothing else pays it), `processed` also confirms it, `failed` sends it to card reversal with its
 * units kept (Apace can no longer pay a failed offer). A message that contradicts what we know
 * stays pending in the inbox until the sweeper has read Apace's own record.
 */
export async function applyApaceNotification(
  store: OrderStore,
  ids: RefundIds,
  notification: ApaceNotification,
  raw: string,
  ctx: TransitionContext,
): Promise<NotificationResult> {
  const { order, refund: current } = await currentOrderRefund(store, ids);
  // Apace echoes the offer's `order_id`: the customer's order number, or our id for an offer made before it was (docs/design.md §2.6).
  if (notification.order_id !== ids.orderId && notification.order_id !== apaceOrderId(order)) {
    throw new InvalidInputError('order_id in the body does not match the notification URL', 'order_mismatch');
  }
  const kind = notificationKind(notification);
  const key = apaceInboxKey(raw);
  const note = `Apace refund ${notification.refund_id}: ${kind}`;
  const { record } = await store.recordPendingInbound(ids.orderId, { source: 'apace', key, raw, note, attributes: { refundId: ids.refundId } }, ctx.now);
  if (record.status !== 'pending') return { applied: false, refund: current };
  return processApaceNotification(store, ids, notification, raw, ctx);
}

/**
 * Applies a stored Apace message (the webhook's own path, and the sweeper's replay of one stored
 * but not applied) and marks it processed, unless it contradicts what we know: then it stays
 * pending for `checkApaceRecord`. Applying a message twice changes nothing the second time.
 */
export async function processApaceNotification(
  store: OrderStore,
  ids: RefundIds,
  notification: ApaceNotification,
  raw: string,
  ctx: TransitionContext,
): Promise<NotificationResult> {
  const current = await currentRefund(store, ids);
  const kind = notificationKind(notification);
  const key = apaceInboxKey(raw);
  if (contradicts(current, kind)) {
    logger.warn('Apace notification contradicts the refund: kept until Apace confirms it', {
      order_id: ids.orderId,
      refund_id: ids.refundId,
      kind,
      state: current.state,
      channel: current.channel,
    });
    return { applied: false, refund: current, awaitingCheck: true };
  }
  const audit = { actor: 'apace' as const, raw, note: `Apace refund ${notification.refund_id}: ${kind}` };
  const decide = (refund: Refund): RefundEvent => (kind === 'failed' ? failureEvent(refund) : paymentEvent(refund, kind));
  let outcome = await applyDeciding(store, ids, current, decide, ctx, audit);
  if (outcome.applied && kind !== 'failed') reportApacePaidTwice(ids.orderId, outcome.refund);
  if (kind === 'processed' && outcome.refund.state === 'paid' && outcome.refund.channel === 'apace' && !outcome.refund.confirmedAt) {
    const confirmed = await applyDeciding(store, ids, outcome.refund, () => 'apace_confirmed', ctx, audit);
    if (confirmed.applied) outcome = confirmed;
  }
  const { refund } = outcome;
  if (outcome.applied) {
    if (kind === 'failed') logger.warn('Apace reports the payout failed: the refund goes to card reversal', { order_id: ids.orderId, refund_id: ids.refundId });
    await store.settleInbound(ids.orderId, 'apace', key, 'processed', `applied: refund is ${refund.state} via ${refund.channel}`, ctx.now);
    return { applied: true, refund };
  }
  const duplicate = outcome.why === 'already_applied' || (refund.state === 'paid' && refund.channel === 'apace' && kind !== 'failed');
  const note = `Apace ${kind} not applied: refund is ${refund.state} via ${refund.channel}${duplicate ? ' (duplicate)' : ''}`;
  await store.settleInbound(ids.orderId, 'apace', key, 'processed', note, ctx.now);
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

export type CheckOutcome = 'applied' | 'unchanged' | 'retry_later' | 'needs_operator';

/**
 * Reads Apace's own record of a refund whose webhook contradicted what we know, and acts on it
 * (docs/design.md §2.5): a payout Apace confirms failed sends the refund to card reversal with its
 * units kept; a payout it confirms under way or done is booked if no other channel has moved
 * money, and goes to an operator otherwise. An unreachable Apace leaves the message pending.
 */
export async function checkApaceRecord(
  store: OrderStore,
  apace: ApaceRecord,
  ids: RefundIds,
  notification: ApaceNotification,
  raw: string,
  ctx: TransitionContext,
): Promise<CheckOutcome> {
  const refund = await currentRefund(store, ids);
  const key = apaceInboxKey(raw);
  const kind = notificationKind(notification);
  const apaceRefundId = refund.refs.apaceRefundId ?? String(notification.refund_id);
  const answer = await apace.status(apaceRefundId);
  const settle = async (status: 'processed' | 'failed', note: string, outcome: CheckOutcome) => {
    await store.settleInbound(ids.orderId, 'apace', key, status, note, ctx.now);
    return outcome;
  };
  if (answer.kind === 'failed') {
    logger.warn('Apace record unavailable; the contradicting webhook stays pending', { order_id: ids.orderId, refund_id: ids.refundId, reason: answer.reason });
    return 'retry_later';
  }
  if (answer.kind === 'not_found') {
    logger.error('Apace has no record of the refund its webhook names', { order_id: ids.orderId, refund_id: ids.refundId, apace_refund_id: apaceRefundId });
    return settle('failed', `Apace ${kind} not applied: Apace has no refund ${apaceRefundId}`, 'needs_operator');
  }
  const audit = { actor: 'apace' as const, raw, note: `Apace refund ${apaceRefundId}: ${kind}; Apace's record says ${answer.payout}` };
  const apply = (event: RefundEvent, extra: Partial<TransitionContext> = {}) => applyDeciding(store, ids, refund, () => event, { ...ctx, ...extra }, audit);
  switch (answer.payout) {
    case 'failed': {
      if (refund.channel !== 'apace' || apacePayoutFailed(refund))
        return settle('processed', `Apace confirms its payout failed; refund is ${refund.state} via ${refund.channel}`, 'unchanged');
      const moved = await apply(failureEvent(refund));
      return settle(
        'processed',
        `Apace confirms its payout failed: ${moved.applied ? 'refund sent to card reversal' : `not applied (${moved.refund.state})`}`,
        moved.applied ? 'applied' : 'unchanged',
      );
    }
    case 'pending':
    case 'processed': {
      if (refund.state === 'paid' && refund.channel === 'apace') {
        if (answer.payout === 'pending' || refund.confirmedAt)
          return settle('processed', `Apace's record says ${answer.payout}; refund already paid via Apace`, 'unchanged');
        const confirmed = await apply('apace_confirmed');
        return settle('processed', `Apace's record says processed`, confirmed.applied ? 'applied' : 'unchanged');
      }
      const paid = apacePayoutFailed(refund) ? undefined : await apply(paymentEvent(refund, answer.payout));
      if (paid?.applied) {
        reportApacePaidTwice(ids.orderId, paid.refund);
        return settle('processed', `Apace's record says ${answer.payout}: booked paid via Apace`, 'applied');
      }
      // Apace paid, or says it is paying, a refund we hold for another channel: a person must look.
      const reason = `Apace's record says payout ${answer.payout} for a refund that is ${refund.state} via ${refund.channel}`;
      const review = await apply('review_required', { reason });
      logger.error('Apace paid a refund refund-relay cannot book', { order_id: ids.orderId, refund_id: ids.refundId, reason });
      emitMetric('RefundsInManualReview', 1);
      return settle('failed', `${reason}${review.applied ? '; moved to manual review' : ''}`, 'needs_operator');
    }
    case 'none':
      return settle('processed', `Apace's record shows no payout; ${kind} not applied`, 'unchanged');
  }
}

async function currentRefund(store: OrderStore, ids: RefundIds): Promise<Refund> {
  return (await currentOrderRefund(store, ids)).refund;
}

async function currentOrderRefund(store: OrderStore, ids: RefundIds): Promise<{ order: Order; refund: Refund }> {
  const order = await store.getOrder(ids.orderId);
  if (!order) throw new OrderNotFoundError(`order ${ids.orderId} not found`);
  const refund = own(order.refunds, ids.refundId);
  if (!refund) throw new RefundNotFoundError(`refund ${ids.refundId} not found on order ${ids.orderId}`);
  return { order, refund };
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
  // Contention is answered as retryable, so Apace delivers again later rather than lose the payout.
  throw new StoreContentionError(`refund ${ids.refundId} kept changing while booking an Apace notification`);
}

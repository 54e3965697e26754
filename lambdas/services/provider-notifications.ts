import { createHash } from 'node:crypto';
import { logger } from '../commons/logger';
import type { PaymentProvider } from '../domain/order';
import type { Refund, RefundEvent, RefundState, TransitionContext } from '../domain/refund';
import type { EpgStatusNotification } from '../providers/addon-payments/schemas';
import { isRefundCallback, type OpttyNotification } from '../providers/optty/schemas';
import { refundIdFromReason } from '../providers/paypro/client';
import { ipnDeliveryKey, reversalSettlement, type PayProIpn } from '../providers/paypro/ipn';
import type { ReversalConnector } from '../providers/reversal';
import type { Actor, OrderStore, StoredOrder } from '../store/order-store';
import { reversalRequest } from './dispatcher';

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

interface Located {
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
const CONFIRMABLE: ReadonlySet<RefundState> = new Set(Object.keys(PROOF_EVENTS) as RefundState[]);

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Longer than any refund id we create, and short enough to stay a valid table key. */
const MAX_REFUND_ID_LENGTH = 256;

/** Our refund by its id, through the link the dispatcher writes before a provider first hears the id. */
async function locateRefund(store: OrderStore, refundId: string): Promise<Located | undefined> {
  if (refundId.length > MAX_REFUND_ID_LENGTH) return undefined;
  const target = await store.findReference('refund', refundId);
  const order = target && (await store.getOrder(target.orderId));
  const refund = order && Object.hasOwn(order.refunds, refundId) ? order.refunds[refundId] : undefined;
  return order && refund ? { order, refund } : undefined;
}

const paidBy = (located: Located, provider: PaymentProvider) => located.order.payments[located.refund.paymentId]?.provider === provider;

async function settle(store: OrderStore, located: Located, ctx: TransitionContext, actor: Actor, raw: string, note: string, refs: Record<string, string> = {}): Promise<void> {
  const { order } = located;
  let refund = located.refund;
  // The dispatcher may move the refund between our read and our write; the proof then applies
  // to the state it moved to. Bounded: each round follows a change someone else made.
  for (let round = 0; round < 3; round++) {
    const event = refund.channel === 'reversal' ? PROOF_EVENTS[refund.state] : undefined;
    if (!event) break;
    const outcome = await store.applyEvent(order.orderId, refund.id, event, { ...ctx, refs }, { actor, raw, note }, refund);
    if (outcome.applied) return;
    refund = outcome.refund;
  }
  if (refund.state === 'paid' && refund.channel === 'reversal') return;
  // The provider paid a refund we no longer hold (released, or paid through another channel).
  logger.error('provider reports a reversal paid that refund-relay cannot book', { order_id: order.orderId, refund_id: refund.id, provider: actor, state: refund.state, channel: refund.channel });
}

/**
 * Brings the follow-up of a submitted reversal forward to now, but never to less than one lease
 * after the refund last changed: a dispatcher that has just claimed the call keeps it, and a flood
 * of hints cannot make the dispatcher ask the provider more often than once per lease.
 */
async function followUpSooner(store: OrderStore, located: Located, ctx: NotificationContext, actor: Actor, note: string): Promise<void> {
  const { order, refund } = located;
  if (refund.state !== 'reversal_submitted') return;
  const nextAttemptAt = new Date(Math.max(Date.parse(ctx.now), Date.parse(refund.updatedAt) + ctx.leaseMs)).toISOString();
  if (refund.nextAttemptAt !== undefined && refund.nextAttemptAt <= nextAttemptAt) return;
  await store.applyEvent(order.orderId, refund.id, 'rescheduled', { now: ctx.now, claimWindowMs: ctx.claimWindowMs, nextAttemptAt }, { actor, note }, refund);
}

/**
 * A verified PayPro IPN (PayPro counts only 200 as delivered). Types 2 and 5 settle the reversal
 * named in ACTION_REASON when its payment is that PayPro order; IS_RESENT and repeats land on the
 * same inbox record and change nothing twice. Everything else is kept for the record.
 */
export async function recordPayProIpn(store: OrderStore, ipn: PayProIpn, raw: string, ctx: TransitionContext): Promise<void> {
  const refundId = ipn.ACTION_REASON === undefined ? undefined : refundIdFromReason(ipn.ACTION_REASON);
  const located = refundId === undefined ? undefined : await locateRefund(store, refundId);
  const note = `PayPro IPN ${ipn.IPN_TYPE_ID} ${ipn.IPN_TYPE_NAME} for PayPro order ${ipn.ORDER_ID}${refundId ? `, refund ${refundId}` : ''}`;
  const record = { source: 'paypro' as const, key: ipnDeliveryKey(raw), raw, note };
  const settles = reversalSettlement(ipn) !== undefined;
  if (!located) {
    await store.recordUnmatchedInbound(record, ctx.now);
    if (settles) logger.error('PayPro refunded an order for no refund refund-relay knows', { paypro_order_id: ipn.ORDER_ID, refund_id: refundId, issued_by: ipn.REFUND_ISSUED_BY });
    return;
  }
  await store.recordInbound(located.order.orderId, record, ctx.now);
  if (!settles) return;
  const payment = located.order.payments[located.refund.paymentId];
  if (!paidBy(located, 'paypro') || payment?.transactionId?.trim() !== ipn.ORDER_ID) {
    logger.error('PayPro IPN names a refund of another payment; not applied', { paypro_order_id: ipn.ORDER_ID, order_id: located.order.orderId, refund_id: located.refund.id });
    return;
  }
  await settle(store, located, ctx, 'paypro', raw, `${note}: signed proof that PayPro refunded`);
}

/**
 * An EPG status notification: unsigned (providers.md §4), and EPG has no status query to confirm it
 * with, so it never changes money state. It only brings the follow-up of the refund it names
 * forward. One naming no card reversal of ours is answered and dropped unstored: nothing vouches
 * for its sender, and storing it would let anyone fill the table.
 */
export async function recordEpgHint(store: OrderStore, notification: EpgStatusNotification, raw: string, ctx: NotificationContext): Promise<void> {
  const located = await locateRefund(store, notification.merchantTransactionId);
  if (!located || !paidBy(located, 'addon_payments')) {
    logger.warn('EPG notification names no card reversal of ours; ignored', { merchant_transaction_id: notification.merchantTransactionId.slice(0, 64) });
    return;
  }
  const note = `EPG status ${notification.status} (unverified hint)`;
  // Keyed on what it claims rather than the raw bytes, so varied bodies cannot pile up records.
  const key = sha256(`${notification.merchantTransactionId}\n${notification.status}\n${notification.transactionId ?? ''}`);
  await store.recordInbound(located.order.orderId, { source: 'addon_payments', key, raw, note }, ctx.now);
  await followUpSooner(store, located, ctx, 'addon_payments', note);
}

/**
 * An Optty notification (its URL secret checked). A REFUND_CALLBACK naming one of our reversals
 * is confirmed by reading the transaction details from Optty: SUCCESSFUL there settles the refund;
 * anything else brings the dispatcher's follow-up forward, which decides as it always does.
 */
export async function recordOpttyNotification(
  store: OrderStore,
  notification: OpttyNotification,
  raw: string,
  optty: () => ReversalConnector,
  ctx: NotificationContext,
): Promise<void> {
  const refundId = isRefundCallback(notification) ? notification.refundReference : undefined;
  const located = refundId ? await locateRefund(store, refundId) : undefined;
  const note = `Optty ${notification.event} ${notification.status} (hint, re-checked with Optty)`;
  const record = { source: 'optty' as const, key: sha256(raw), raw, note };
  if (!located) {
    await store.recordUnmatchedInbound(record, ctx.now);
    return;
  }
  await store.recordInbound(located.order.orderId, record, ctx.now);
  const { order, refund } = located;
  if (!paidBy(located, 'optty') || refund.channel !== 'reversal' || !CONFIRMABLE.has(refund.state)) return;
  const outcome = await optty().status(reversalRequest(order, refund));
  if (outcome.kind === 'succeeded') {
    await settle(store, located, ctx, 'optty', raw, `Optty transaction details: ${outcome.detail}`, outcome.providerRef ? { providerRef: outcome.providerRef } : {});
    return;
  }
  await followUpSooner(store, located, ctx, 'optty', `${note}; Optty says ${outcome.kind}: ${outcome.detail}`);
}

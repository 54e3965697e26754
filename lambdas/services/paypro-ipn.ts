import { logger } from '../commons/logger';
import type { TransitionContext } from '../domain/refund';
import { ipnDeliveryKey, parsePayProIpn, refundIdFromReason, reversalSettlement, type PayProIpn } from '../providers/paypro/ipn';
import type { OrderStore, PendingInbound } from '../store/order-store';
import { locateRefund, paidBy, settle, type Located } from './reversal-notices';

/**
 * A verified PayPro IPN (PayPro counts only 200 as delivered). Types 2 and 5 settle the reversal
 * named in ACTION_REASON when its payment is that PayPro order: stored first as pending, then
 * applied, then marked processed, so one stored but never applied (a crash between the two) is
 * applied by the sweeper (`replayPayProIpn`) rather than waiting for PayPro's resend. IS_RESENT and
 * repeats land on the same inbox record and change nothing twice. Everything else is kept for the record.
 */
export async function recordPayProIpn(store: OrderStore, ipn: PayProIpn, raw: string, ctx: TransitionContext): Promise<void> {
  const refundId = ipn.ACTION_REASON === undefined ? undefined : refundIdFromReason(ipn.ACTION_REASON);
  const located = refundId === undefined ? undefined : await locateRefund(store, refundId);
  const note = ipnNote(ipn, refundId);
  const record = { source: 'paypro' as const, key: ipnDeliveryKey(raw), raw, note };
  const settles = reversalSettlement(ipn) !== undefined;
  if (!located) {
    await store.recordUnmatchedInbound(record, ctx.now);
    if (settles)
      logger.error('PayPro refunded an order for no refund refund-relay knows', {
        paypro_order_id: ipn.ORDER_ID,
        refund_id: refundId,
        issued_by: ipn.REFUND_ISSUED_BY,
      });
    return;
  }
  if (!settles) {
    await store.recordInbound(located.order.orderId, record, ctx.now);
    return;
  }
  const { record: kept } = await store.recordPendingInbound(located.order.orderId, { ...record, attributes: { refundId: located.refund.id } }, ctx.now);
  if (kept.status === 'pending') await applySettlement(store, located, ipn, raw, note, ctx);
}

/**
 * The sweeper's second go at a settling IPN stored but not applied: read again from the inbox
 * (it was verified before it was stored) and applied, idempotently.
 */
export async function replayPayProIpn(store: OrderStore, stored: PendingInbound, ctx: TransitionContext): Promise<void> {
  let ipn: PayProIpn;
  try {
    ipn = parsePayProIpn(stored.raw);
  } catch {
    await store.settleInbound(stored.orderId, 'paypro', stored.key, 'failed', `${stored.note}: the stored IPN cannot be read again`, ctx.now);
    return;
  }
  const refundId = stored.attributes.refundId;
  const located = refundId === undefined ? undefined : await locateRefund(store, refundId);
  if (!located || located.order.orderId !== stored.orderId) {
    await store.settleInbound(stored.orderId, 'paypro', stored.key, 'failed', `${stored.note}: its refund is gone`, ctx.now);
    return;
  }
  await applySettlement(store, located, ipn, stored.raw, stored.note, ctx);
}

async function applySettlement(store: OrderStore, located: Located, ipn: PayProIpn, raw: string, note: string, ctx: TransitionContext): Promise<void> {
  const key = ipnDeliveryKey(raw);
  const payment = located.order.payments[located.refund.paymentId];
  if (!paidBy(located, 'paypro') || payment?.transactionId?.trim() !== ipn.ORDER_ID) {
    logger.error('PayPro IPN names a refund of another payment; not applied', {
      paypro_order_id: ipn.ORDER_ID,
      order_id: located.order.orderId,
      refund_id: located.refund.id,
    });
    await store.settleInbound(located.order.orderId, 'paypro', key, 'failed', `${note}: names a refund of another payment, not applied`, ctx.now);
    return;
  }
  await settle(store, located, ctx, 'paypro', raw, `${note}: signed proof that PayPro refunded`);
  await store.settleInbound(located.order.orderId, 'paypro', key, 'processed', `${note}: applied`, ctx.now);
}

function ipnNote(ipn: PayProIpn, refundId: string | undefined): string {
  return `PayPro IPN ${ipn.IPN_TYPE_ID} ${ipn.IPN_TYPE_NAME} for PayPro order ${ipn.ORDER_ID}${refundId ? `, refund ${refundId}` : ''}`;
}

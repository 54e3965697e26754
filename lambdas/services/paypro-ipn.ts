import { logger } from '../commons/logger';
import type { TransitionContext } from '../domain/refund';
import { ipnDeliveryKey, refundIdFromReason, reversalSettlement, type PayProIpn } from '../providers/paypro/ipn';
import type { OrderStore } from '../store/order-store';
import { locateRefund, paidBy, settle } from './reversal-notices';

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
    if (settles)
      logger.error('PayPro refunded an order for no refund refund-relay knows', {
        paypro_order_id: ipn.ORDER_ID,
        refund_id: refundId,
        issued_by: ipn.REFUND_ISSUED_BY,
      });
    return;
  }
  await store.recordInbound(located.order.orderId, record, ctx.now);
  if (!settles) return;
  const payment = located.order.payments[located.refund.paymentId];
  if (!paidBy(located, 'paypro') || payment?.transactionId?.trim() !== ipn.ORDER_ID) {
    logger.error('PayPro IPN names a refund of another payment; not applied', {
      paypro_order_id: ipn.ORDER_ID,
      order_id: located.order.orderId,
      refund_id: located.refund.id,
    });
    return;
  }
  await settle(store, located, ctx, 'paypro', raw, `${note}: signed proof that PayPro refunded`);
}

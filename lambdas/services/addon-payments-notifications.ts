import { logger } from '../commons/logger';
import type { AddonPaymentsStatusNotification } from '../providers/addon-payments/schemas';
import type { OrderStore } from '../store/order-store';
import { followUpSooner, locateRefund, paidBy, sha256, type NotificationContext } from './reversal-notices';

/**
 * An EPG status notification: unsigned (docs/providers.md §4), and EPG has no status query to confirm it
 * with, so it never changes money state. It only brings the follow-up of the refund it names
 * forward. One naming no card reversal of ours is answered and dropped unstored: nothing vouches
 * for its sender, and storing it would let anyone fill the table.
 */
export async function recordAddonPaymentsHint(
  store: OrderStore,
  notification: AddonPaymentsStatusNotification,
  raw: string,
  ctx: NotificationContext,
): Promise<void> {
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

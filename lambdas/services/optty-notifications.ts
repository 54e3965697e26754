import { isRefundCallback, type OpttyNotification } from '../providers/optty/schemas';
import type { ReversalConnector } from '../providers/reversal';
import type { OrderStore } from '../store/order-store';
import { reversalRequest } from '../providers/reversal';
import { CONFIRMABLE, followUpSooner, locateRefund, paidBy, settle, sha256, type NotificationContext } from './reversal-notices';

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
    await settle(
      store,
      located,
      ctx,
      'optty',
      raw,
      `Optty transaction details: ${outcome.detail}`,
      outcome.providerRef ? { providerRef: outcome.providerRef } : {},
    );
    return;
  }
  await followUpSooner(store, located, ctx, 'optty', `${note}; Optty says ${outcome.kind}: ${outcome.detail}`);
}

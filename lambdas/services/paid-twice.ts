import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';

/**
 * A card reversal paid a refund whose return Ap21 shows refunded or exchanged elsewhere as well: the
 * customer was paid twice (docs/design.md §2.3). Logged as an error and counted (`RefundsPaidTwice`,
 * which an alarm watches) for an operator to recover the money. Callers report each refund once: at
 * the write that booked it paid knowing the mark, or at the write of the mark on a paid refund.
 */
export function reportPaidTwice(orderId: string, refundId: string, reason: string): void {
  logger.error('refund paid twice: reversed on the card and settled elsewhere in Ap21; recover the money', { order_id: orderId, refund_id: refundId, reason });
  emitMetric('RefundsPaidTwice', 1);
}

import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { settledElsewhere, type Refund } from '../domain/refund';

/**
 * A card reversal or an Apace payout paid a refund whose return Ap21 shows refunded or exchanged elsewhere as well: the
 * customer was paid twice (docs/design.md §2.3). Logged as an error and counted (`RefundsPaidTwice`,
 * which an alarm watches) for an operator to recover the money. Callers report each refund once: at
 * the write that booked it paid knowing the mark, or at the write of the mark on a paid refund.
 */
export function reportPaidTwice(orderId: string, refundId: string, reason: string): void {
  logger.error('refund paid twice: reversed on the card and settled elsewhere in Ap21; recover the money', { order_id: orderId, refund_id: refundId, reason });
  emitMetric('RefundsPaidTwice', 1);
}

/**
 * An Apace payment just booked for a refund whose offer Ap21 showed settled elsewhere (the cancel-first path's mark,
 * no operator's redrive since): Apace paid a claim it had approved before the cancel, so the customer was paid twice
 * (docs/design.md §2.3). Callers report at the write that booked the payment, once.
 */
export function reportApacePaidTwice(orderId: string, refund: Pick<Refund, 'id' | 'refs'>): void {
  const twice = settledElsewhere(refund);
  if (twice !== undefined) reportPaidTwice(orderId, refund.id, `${twice}; Apace paid a claim it had approved`);
}

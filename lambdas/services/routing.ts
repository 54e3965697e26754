import type { Channel } from '../domain/refund';
import type { PaymentLedger } from '../domain/order';

/** Stage configuration: offer Apace first (card reversal as fallback), or reverse on the card only. */
export type RoutingPolicy = 'apace_first' | 'reversal_only';

const LAST_FOUR = /^\d{4}$/;

/**
 * The channel a new card refund takes. Apace needs the card's last four digits, which Ap21's payment
 * block does not carry: they come only from the configured trusted source, and without them (or
 * without Apace configured) the refund goes straight to card reversal. Nothing invents them.
 */
export function chooseRoute(payment: PaymentLedger, policy: RoutingPolicy, apaceConfigured: boolean): Extract<Channel, 'apace' | 'reversal'> {
  if (policy === 'apace_first' && apaceConfigured && payment.cardLastFour !== undefined && LAST_FOUR.test(payment.cardLastFour)) return 'apace';
  return 'reversal';
}

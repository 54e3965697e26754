import type { Order, PaymentLedger } from './order';
import { compareIds } from './returns';
import { isReversalProvider } from '../providers/registry';

/**
 * Which of the order's payments a return's money goes back to (docs/design.md §2.7). Ap21 does not
 * say which payment paid for which unit, so the stated rule is: the order's payments pay for its
 * units in the stage's tender order (`AP21_TENDER_ORDER`; payments of a tender it does not list
 * come after, and by default all are in the order Ap21 lists them), and money goes back to the
 * first payment in that order with anything left to refund, never more than it has left. Money
 * that would straddle two payments, or that goes back to a tender refund-relay cannot reverse
 * (no connector, or a tender the stage gives to operators, `AP21_OPERATOR_TENDERS`), is held for
 * an operator with the reason.
 */
export interface TenderRules {
  /** Tender names (an Ap21 payment's `Origin`, else its `CardType`), first refunded first. */
  readonly order: readonly string[];
  /** Tenders always refunded by an operator, whatever connector AP21_PAYMENT_PROVIDERS names. */
  readonly operatorTenders: readonly string[];
}

export const DEFAULT_OPERATOR_TENDERS: readonly string[] = ['GiftVoucher'];

const normalized = (text: string) => text.trim().toLowerCase();

/** A payment's tender as Ap21 names it: its `Origin`, else its `CardType`. */
export function tenderName(payment: { readonly origin?: string; readonly cardType?: string }): string | undefined {
  const name = payment.origin?.trim() || payment.cardType?.trim();
  return name || undefined;
}

/** A gift voucher or gift card (Refundid's `is_giftcard_used`). */
export const isGiftTender = (tender: string | undefined): boolean => /gift/i.test(tender ?? '');

/** Rank of a tender in the stage's order: listed ones by position, the rest after them. */
function rank(tender: string | undefined, rules: TenderRules): number {
  const index = tender === undefined ? -1 : rules.order.findIndex((listed) => normalized(listed) === normalized(tender));
  return index === -1 ? rules.order.length : index;
}

/** Payments in the order refunds draw on them: tender order, then Ap21's own order (its payment ids). */
export function inTenderOrder<P extends { readonly tender?: string }>(payments: Readonly<Record<string, P>>, rules: TenderRules): [string, P][] {
  return Object.entries(payments).sort(([idA, a], [idB, b]) => rank(a.tender, rules) - rank(b.tender, rules) || compareIds(idA, idB));
}

/** Why an operator, not a connector, must refund this payment; undefined when a connector can. */
function operatorOnlyReason(paymentId: string, payment: Pick<PaymentLedger, 'provider' | 'tender'>, rules: TenderRules): string | undefined {
  const tender = payment.tender ?? 'an unnamed tender';
  if (payment.tender !== undefined && rules.operatorTenders.some((listed) => normalized(listed) === normalized(payment.tender!))) {
    return `payment ${paymentId} was made by ${tender}, which this stage refunds through an operator`;
  }
  if (!isReversalProvider(payment.provider)) return `payment ${paymentId} was made by ${tender}, which refund-relay cannot reverse (no connector for it)`;
  return undefined;
}

export interface TenderDecision {
  readonly paymentId: string;
  /** Set when the money must not move without an operator. */
  readonly hold?: string;
}

/**
 * The payment `amountMinor` goes back to under the tender rule, and whether an operator must move
 * it. Undefined when no single payment has that much left (the ledger books a refund against one).
 */
export function paymentForReturn(order: Pick<Order, 'payments'>, amountMinor: number, rules: TenderRules): TenderDecision | undefined {
  const ordered = inTenderOrder(order.payments, rules).filter(([, payment]) => payment.availableMinor > 0);
  const first = ordered[0];
  if (!first) return undefined;
  const [firstId, firstPayment] = first;
  if (firstPayment.availableMinor >= amountMinor) {
    const hold = operatorOnlyReason(firstId, firstPayment, rules);
    return { paymentId: firstId, ...(hold !== undefined && { hold }) };
  }
  const covering = ordered.find(([, payment]) => payment.availableMinor >= amountMinor);
  if (!covering) return undefined;
  const parts = ordered.map(([id, payment]) => `${id} (${payment.tender ?? 'unnamed tender'}, ${payment.availableMinor} left)`).join(', ');
  return { paymentId: covering[0], hold: `the returned units' ${amountMinor} is split over the payments ${parts}: an operator divides it` };
}

/** The stage's tender rules with nothing configured. */
export const DEFAULT_TENDER_RULES: TenderRules = { order: [], operatorTenders: DEFAULT_OPERATOR_TENDERS };

/**
 * Exchanges are not refunds (docs/design.md §2.8). A customer who swaps an item for another keeps
 * the new item instead of money: Ap21 records the return and an exchange order (the return's
 * `ReturnAuthorisationNumber` names it, its status says Return Merged), Refundid an RMA line whose
 * `compensation_method` is `exchange` or `credit`. Such units are settled without money, unless the
 * stage refunds the difference when the return was worth more than the exchange order.
 */

/**
 * `no_money` (default): an exchange moves no money. `refund_difference`: also refunds what the
 * returned units were worth beyond the exchange order, when Ap21 shows that order's value.
 * `refund`: the rule off, every return is refunded in money as if there were no exchange.
 */
export const EXCHANGE_POLICIES = ['no_money', 'refund_difference', 'refund'] as const;
export type ExchangePolicy = (typeof EXCHANGE_POLICIES)[number];

/** Ap21 return statuses that mean "exchanged" (docs/providers.md §3: Return Merged (9), against an original in Exchange (6)). */
export const DEFAULT_EXCHANGE_STATUSES: readonly string[] = ['Return Merged', 'Exchange'];

export interface ExchangeRules {
  readonly policy: ExchangePolicy;
  /** Return statuses that say the return was settled by an exchange, compared trimmed and case-insensitively. */
  readonly statuses: readonly string[];
}

export const DEFAULT_EXCHANGE_RULES: ExchangeRules = { policy: 'no_money', statuses: DEFAULT_EXCHANGE_STATUSES };

/** What Ap21 shows of a return that may be an exchange. */
export interface ReturnExchangeFacts {
  /** The return's own `<Status>`. */
  readonly status?: string;
  /** `ReturnAuthorisationNumber`: "the exchange order number" — shown on plain returns too, so never proof by itself. */
  readonly authorisationNumber?: string;
}

/** The exchange order as Ap21 answers its number: found (with what it is worth, when that can be read) or not. */
export type ExchangeOrderLookup =
  | { readonly found: false }
  | { readonly found: true; readonly orderNumber: string; readonly valueMinor?: number }
  /** Not asked (no lookup on this path, or no number to ask by). */
  | undefined;

export type ExchangeDecision =
  | { readonly kind: 'not_exchange' }
  /** No money moves: the units are settled by the exchange. */
  | { readonly kind: 'settled'; readonly settledBy: string; readonly note: string }
  /** Only the difference moves: the return was worth more than the exchange order, and the stage refunds that. */
  | { readonly kind: 'difference'; readonly settledBy: string; readonly differenceMinor: number; readonly note: string };

const normalized = (text: string) => text.trim().toLowerCase();

export function statusSaysExchange(status: string | undefined, rules: Pick<ExchangeRules, 'statuses'>): boolean {
  return status !== undefined && rules.statuses.some((listed) => normalized(listed) === normalized(status));
}

/** Whether a return needs the exchange rule at all; plain returns without a number cost nothing more. */
export function mayBeExchange(facts: ReturnExchangeFacts, rules: ExchangeRules): boolean {
  return rules.policy !== 'refund' && (facts.authorisationNumber !== undefined || statusSaysExchange(facts.status, rules));
}

/**
 * Whether Ap21 must be asked for the exchange order: only when the return names one, and only when
 * the answer can change the decision (the status already says exchange and no difference is ever
 * refunded: nothing to learn).
 */
export function needsExchangeLookup(facts: ReturnExchangeFacts, rules: ExchangeRules): boolean {
  if (!mayBeExchange(facts, rules) || facts.authorisationNumber === undefined) return false;
  return !(statusSaysExchange(facts.status, rules) && rules.policy === 'no_money');
}

/** Whether Ap21 shows the return exchanged: its status says so, or the exchange order it names exists. */
export function exchangeShown(facts: ReturnExchangeFacts, lookup: ExchangeOrderLookup, statuses: readonly string[]): boolean {
  return statusSaysExchange(facts.status, { statuses }) || lookup?.found === true;
}

/**
 * The decision for one return worth `returnValueMinor`: an exchange when its status says so or when
 * the exchange order its number names exists in Ap21 ("when in doubt, ask the provider": a number
 * alone is not an exchange). A difference is refunded only under `refund_difference` and only when
 * the exchange order's value is known.
 */
export function decideExchange(facts: ReturnExchangeFacts, lookup: ExchangeOrderLookup, returnValueMinor: number, rules: ExchangeRules): ExchangeDecision {
  if (rules.policy === 'refund') return { kind: 'not_exchange' };
  if (!exchangeShown(facts, lookup, rules.statuses)) return { kind: 'not_exchange' };
  const byOrder = lookup?.found === true;
  const orderNumber = lookup?.found ? lookup.orderNumber : facts.authorisationNumber;
  const settledBy = orderNumber !== undefined ? `Ap21 exchange order ${orderNumber}` : `Ap21 exchange (return status ${facts.status?.trim() ?? ''})`;
  // Timeline notes are cut at 200 characters: short words, minor units.
  const why = byOrder ? `order ${orderNumber} in Ap21` : `status ${facts.status?.trim() ?? ''}`;
  const valueMinor = lookup?.found ? lookup.valueMinor : undefined;
  const differenceMinor = valueMinor === undefined ? undefined : returnValueMinor - valueMinor;
  if (differenceMinor !== undefined && differenceMinor > 0 && rules.policy === 'refund_difference') {
    return { kind: 'difference', settledBy, differenceMinor, note: `settled by exchange (${why}): only the difference ${differenceMinor} refunded` };
  }
  const difference =
    differenceMinor === undefined || differenceMinor <= 0 ? '' : `; difference ${differenceMinor} not refunded (EXCHANGE_POLICY ${rules.policy})`;
  return { kind: 'settled', settledBy, note: `settled by exchange (${why}): no money${difference}` };
}

/** Refundid's `compensation_method` of an RMA line: whether the customer is compensated in money. */
export function compensatedInMoney(method: string | null | undefined, rules: Pick<ExchangeRules, 'policy'>): boolean {
  if (rules.policy === 'refund' || method === undefined || method === null) return true;
  const m = normalized(method);
  return m !== 'exchange' && m !== 'credit';
}

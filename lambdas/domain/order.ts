import { InvalidRefundError, RefundConflictError, RefundNotFoundError, UnitsUnavailableError } from './errors';
import type { PaymentProvider } from '../providers/registry';
import { currencyExponent } from './money';
import {
  HOLDING_STATES,
  WORK_STATES,
  planTransition,
  type Channel,
  type LedgerEffect,
  type Plan,
  type Refund,
  type RefundClaim,
  type RefundEvent,
  type RefundState,
  type TransitionContext,
} from './refund';

/**
 * The order ledger (docs/design.md §2.1). `available` is kept beside the counters because a DynamoDB
 * condition cannot add: `available >= :units` is how the store enforces
 * `reserved + refunded <= purchased` in one conditional write.
 */
export interface LineLedger {
  readonly purchased: number;
  readonly reserved: number;
  readonly refunded: number;
  readonly available: number;
  /** What the customer paid for the whole line, in minor units of the order currency. */
  readonly valueMinor: number;
  readonly sku?: string;
  readonly title?: string;
  /** Why its units cannot be returned (a cancelled or non-returnable line, docs/design.md §2.7), as known when the order was opened. */
  readonly nonReturnable?: string;
}

/** Who took a payment: a provider of lambdas/providers/registry.ts that takes payments, or `other`. */
export type { PaymentProvider };

export interface PaymentLedger {
  readonly capturedMinor: number;
  readonly reservedMinor: number;
  readonly refundedMinor: number;
  readonly availableMinor: number;
  readonly provider: PaymentProvider;
  /** The provider's id of the original transaction (Ap21 `Stan`, EPG transactionId, PayPro order id). */
  readonly transactionId?: string;
  /** Known only when a trusted source supplies it; Apace needs it, nothing invents it. */
  readonly cardLastFour?: string;
  readonly reference?: string;
  /** The tender as the source names it (Ap21 `Origin`, else `CardType`): what the tender rule reads (docs/design.md §2.7). */
  readonly tender?: string;
}

export interface Order {
  readonly orderId: string;
  readonly currency: string;
  readonly lines: Readonly<Record<string, LineLedger>>;
  readonly payments: Readonly<Record<string, PaymentLedger>>;
  readonly refunds: Readonly<Record<string, Refund>>;
  readonly customer?: { readonly email?: string; readonly firstName?: string; readonly lastName?: string };
  /** Where the order came from (for Ap21: person id, order number, country code). */
  readonly origin: Readonly<Record<string, string>>;
  /**
   * The outside name senders find the order by when they do not know its id (for Ap21: the
   * normalised order number), in the form lookups use. The first order opened under a name owns it.
   */
  readonly lookupKey?: string;
  readonly createdAt: string;
  readonly version: number;
}

export interface NewLine {
  readonly lineId: string;
  readonly quantity: number;
  readonly valueMinor: number;
  readonly sku?: string;
  readonly title?: string;
  readonly nonReturnable?: string;
}

export interface NewPayment extends Omit<PaymentLedger, 'reservedMinor' | 'refundedMinor' | 'availableMinor'> {
  readonly paymentId: string;
}

export interface NewOrder {
  readonly orderId: string;
  readonly currency: string;
  readonly lines: readonly NewLine[];
  readonly payments: readonly NewPayment[];
  readonly customer?: Order['customer'];
  readonly origin?: Readonly<Record<string, string>>;
  readonly lookupKey?: string;
}

const MAX_UNITS = 100_000;
/** Each line is a few conditions and updates in the refund's one write; DynamoDB caps an expression at 4 KB. */
export const MAX_REFUND_LINES = 40;
const CANONICAL_TIME = (text: string) => !Number.isNaN(Date.parse(text)) && new Date(text).toISOString() === text;

/** A record's own entry: ids from outside ("constructor", "toString") never reach the prototype. */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export function openOrder(input: NewOrder, now: string): Order {
  currencyExponent(input.currency);
  if (input.lines.length === 0) throw new InvalidRefundError('an order needs at least one line');
  const lines: Record<string, LineLedger> = {};
  for (const line of input.lines) {
    if (lines[line.lineId]) throw new InvalidRefundError(`duplicate order line ${line.lineId}`);
    if (!Number.isSafeInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_UNITS) {
      throw new InvalidRefundError(`line ${line.lineId}: quantity must be a whole number from 1 to ${MAX_UNITS}`);
    }
    if (!Number.isSafeInteger(line.valueMinor) || line.valueMinor < 0) throw new InvalidRefundError(`line ${line.lineId}: bad value`);
    lines[line.lineId] = {
      purchased: line.quantity,
      reserved: 0,
      refunded: 0,
      available: line.quantity,
      valueMinor: line.valueMinor,
      ...(line.sku !== undefined && { sku: line.sku }),
      ...(line.title !== undefined && { title: line.title }),
      ...(line.nonReturnable !== undefined && { nonReturnable: line.nonReturnable }),
    };
  }
  const payments: Record<string, PaymentLedger> = {};
  for (const { paymentId, ...payment } of input.payments) {
    if (payments[paymentId]) throw new InvalidRefundError(`duplicate payment ${paymentId}`);
    if (!Number.isSafeInteger(payment.capturedMinor) || payment.capturedMinor < 0) {
      throw new InvalidRefundError(`payment ${paymentId}: bad captured amount`);
    }
    payments[paymentId] = { ...payment, reservedMinor: 0, refundedMinor: 0, availableMinor: payment.capturedMinor };
  }
  return {
    orderId: input.orderId,
    currency: input.currency,
    lines,
    payments,
    refunds: {},
    ...(input.customer && { customer: input.customer }),
    origin: input.origin ?? {},
    ...(input.lookupKey !== undefined && { lookupKey: input.lookupKey }),
    createdAt: now,
    version: 1,
  };
}

export interface NewRefund extends RefundClaim {
  readonly refundId: string;
  readonly route: Channel;
  readonly source: Refund['source'];
  /** For the Apace route: when the offer we request expires. */
  readonly offerExpiresAt?: string;
  /**
   * Money that already moved (Refundid, or Ap21 refunding the original payment itself): recorded
   * as paid straight away, never dispatched.
   */
  readonly alreadyPaid?: boolean;
  /** External identifiers known at creation (e.g. the Ap21 return id). */
  readonly refs?: Readonly<Record<string, string>>;
  /**
   * What settled the units instead of money (an Ap21 exchange order, a Refundid line compensated by
   * exchange or credit, docs/design.md §2.8): the refund may then carry no money at all. Required on
   * the `exchange` route, which is recorded settled at once and never dispatched.
   */
  readonly settledBy?: string;
  /**
   * Why no money may move without an operator (a unit that is not returnable, a tender
   * refund-relay cannot reverse, docs/design.md §2.7): the refund starts in manual review with it.
   */
  readonly held?: string;
  /**
   * The stage pays this channel only once Ap21 shows the return received (docs/design.md §2.9): the
   * refund starts in `awaiting_receipt`, and an operator is told if the receipt is not seen by then.
   */
  readonly awaitReceiptUntil?: string;
}

const INITIAL_STATE: Record<Channel, RefundState> = {
  apace: 'offer_pending',
  reversal: 'reversal_pending',
  refundid: 'refundid_pending',
  exchange: 'paid',
};

/** Checks what can be checked without the order: units, amount, route. */
export function validateRefundShape(spec: NewRefund): void {
  const entries = Object.entries(spec.lines);
  if (entries.length === 0) throw new InvalidRefundError('a refund needs at least one line');
  if (entries.length > MAX_REFUND_LINES) throw new InvalidRefundError(`a refund may cover at most ${MAX_REFUND_LINES} order lines; split it`);
  for (const [lineId, units] of entries) {
    if (!Number.isSafeInteger(units) || units < 1 || units > MAX_UNITS) {
      throw new InvalidRefundError(`line ${lineId}: units must be a whole number from 1 to ${MAX_UNITS}`);
    }
  }
  const moneyless = spec.settledBy !== undefined && spec.settledBy.trim() !== '';
  if (!Number.isSafeInteger(spec.amount.minor) || spec.amount.minor < 0 || (spec.amount.minor === 0 && !moneyless)) {
    throw new InvalidRefundError('refund amount must be positive (or zero for units settled by an exchange)');
  }
  if (spec.route === 'exchange' && (!moneyless || !spec.alreadyPaid || spec.source.kind !== 'ap21_exchange')) {
    throw new InvalidRefundError('an exchange record is an Ap21 return already settled by an exchange, saying what settled it');
  }
  if (spec.route === 'apace' && !spec.offerExpiresAt) throw new InvalidRefundError('an Apace refund needs an offer expiry');
  // Times are compared as text everywhere, so only one spelling of an instant is accepted.
  if (spec.offerExpiresAt !== undefined && !CANONICAL_TIME(spec.offerExpiresAt))
    throw new InvalidRefundError('offerExpiresAt must be a UTC ISO time as toISOString() writes it');
  const settledElsewhere = spec.route === 'refundid' || spec.route === 'exchange' || (spec.route === 'reversal' && spec.source.kind === 'ap21_refunded');
  if (spec.alreadyPaid && !settledElsewhere) throw new InvalidRefundError('only Refundid refunds, refunds Ap21 made itself and exchanges arrive already paid');
  if (spec.held !== undefined && (spec.alreadyPaid || spec.route === 'apace' || spec.held.trim() === '')) {
    throw new InvalidRefundError('a refund held for an operator is a card-reversal refund not yet paid, with a reason');
  }
  if (spec.awaitReceiptUntil !== undefined) {
    if (spec.alreadyPaid || spec.held !== undefined || (spec.route !== 'reversal' && spec.route !== 'apace'))
      throw new InvalidRefundError('only an Apace or card-reversal refund not yet paid nor held waits for the return to be received');
    if (!CANONICAL_TIME(spec.awaitReceiptUntil)) throw new InvalidRefundError('awaitReceiptUntil must be a UTC ISO time as toISOString() writes it');
  }
  // These sources are evidence of a payment: dispatching them would pay the customer twice.
  const evidenceOfPayment = spec.source.kind === 'ap21_refundid' || spec.source.kind === 'ap21_refunded' || spec.source.kind === 'ap21_exchange';
  if (evidenceOfPayment && !spec.alreadyPaid) throw new InvalidRefundError(`a ${spec.source.kind} refund records a payment already made`);
  if (spec.source.kind === 'ap21_refundid' && spec.route !== 'refundid')
    throw new InvalidRefundError('a return Refundid refunded is recorded on the Refundid channel');
}

/** Checks a refund request is well-formed against the order (not whether units are still free). */
export function validateNewRefund(order: Pick<Order, 'currency' | 'lines' | 'payments'>, spec: NewRefund): void {
  validateRefundShape(spec);
  for (const [lineId, units] of Object.entries(spec.lines)) {
    const line = own(order.lines, lineId);
    if (!line) throw new InvalidRefundError(`order has no line ${lineId}`);
    if (units > line.purchased) throw new InvalidRefundError(`line ${lineId}: only ${line.purchased} unit(s) were purchased`);
  }
  if (!own(order.payments, spec.paymentId)) throw new InvalidRefundError(`order has no payment ${spec.paymentId}`);
  if (spec.amount.currency !== order.currency) throw new InvalidRefundError(`refund currency ${spec.amount.currency} is not the order's ${order.currency}`);
}

export function newRefundRecord(orderId: string, spec: NewRefund, now: string): Refund {
  const state = spec.alreadyPaid
    ? 'paid'
    : spec.held !== undefined
      ? 'manual_review'
      : spec.awaitReceiptUntil !== undefined
        ? 'awaiting_receipt'
        : INITIAL_STATE[spec.route];
  return {
    id: spec.refundId,
    orderId,
    state,
    channel: spec.route,
    lines: spec.lines,
    paymentId: spec.paymentId,
    amount: spec.amount,
    source: spec.source,
    createdAt: now,
    updatedAt: now,
    offerExpiresAt: spec.route === 'apace' ? (spec.offerExpiresAt ?? null) : null,
    attempts: 0,
    refs: { ...spec.refs },
    ...(spec.alreadyPaid && { paidAt: now }),
    ...(spec.held !== undefined && { reason: spec.held }),
    ...(spec.settledBy !== undefined && { settledBy: spec.settledBy }),
    ...(WORK_STATES.has(state) && { nextAttemptAt: now }),
    ...(state === 'awaiting_receipt' && { nextAttemptAt: spec.awaitReceiptUntil }),
  };
}

/** Same request as the existing refund: a retried create, not a conflict. */
export function sameRefundRequest(existing: Refund, spec: NewRefund): boolean {
  const lines = Object.entries(spec.lines);
  return (
    existing.paymentId === spec.paymentId &&
    existing.amount.minor === spec.amount.minor &&
    existing.amount.currency === spec.amount.currency &&
    existing.source.kind === spec.source.kind &&
    existing.source.ref === spec.source.ref &&
    lines.length === Object.keys(existing.lines).length &&
    lines.every(([lineId, units]) => existing.lines[lineId] === units)
  );
}

/** Per effect: the change of available, reserved and refunded, per unit or minor unit of the claim. */
export const LEDGER_DELTAS = {
  reserve: [-1, 1, 0],
  settle: [0, -1, 1],
  release: [1, -1, 0],
  reopen: [0, 1, -1],
  unbook: [1, 0, -1],
  record_paid: [-1, 0, 1],
} as const;

function moveLedger(order: Order, claim: RefundClaim, effect: LedgerEffect | 'reserve' | 'record_paid'): Pick<Order, 'lines' | 'payments'> {
  if (effect === 'hold') return order;
  const sign = LEDGER_DELTAS[effect];
  const [dAvailable, dReserved, dRefunded] = sign as [number, number, number];
  const lines = { ...order.lines };
  for (const [lineId, units] of Object.entries(claim.lines)) {
    const line = own(lines, lineId);
    if (!line) throw new InvalidRefundError(`order has no line ${lineId}`);
    lines[lineId] = {
      ...line,
      available: line.available + dAvailable * units,
      reserved: line.reserved + dReserved * units,
      refunded: line.refunded + dRefunded * units,
    };
  }
  const payment = own(order.payments, claim.paymentId);
  if (!payment) throw new InvalidRefundError(`order has no payment ${claim.paymentId}`);
  const amount = claim.amount.minor;
  const payments = {
    ...order.payments,
    [claim.paymentId]: {
      ...payment,
      availableMinor: payment.availableMinor + dAvailable * amount,
      reservedMinor: payment.reservedMinor + dReserved * amount,
      refundedMinor: payment.refundedMinor + dRefunded * amount,
    },
  };
  return { lines, payments };
}

/**
 * What `units` of a line are worth: the line's value shared evenly over its purchased units and
 * rounded down, so refunds priced this way never add up to more than the customer paid for it.
 */
export function unitsValue(line: Pick<LineLedger, 'valueMinor' | 'purchased'>, units: number): number {
  return Number((BigInt(line.valueMinor) * BigInt(units)) / BigInt(line.purchased));
}

/** Why a claim cannot be covered, or undefined when it can. */
export function shortfall(order: Pick<Order, 'lines' | 'payments'>, claim: RefundClaim): string | undefined {
  for (const [lineId, units] of Object.entries(claim.lines)) {
    const line = own(order.lines, lineId);
    if (!line) return `order has no line ${lineId}`;
    if (line.available < units) return `line ${lineId}: ${units} unit(s) asked, ${line.available} not yet refunded or in flight`;
  }
  const payment = own(order.payments, claim.paymentId);
  if (!payment) return `order has no payment ${claim.paymentId}`;
  if (payment.availableMinor < claim.amount.minor) {
    return `payment ${claim.paymentId}: ${claim.amount.minor} asked, ${payment.availableMinor} left to refund`;
  }
  return undefined;
}

/** Creates a refund and reserves (or, when already paid, books) its units and amount. */
export function addRefund(order: Order, spec: NewRefund, now: string): { order: Order; refund: Refund; created: boolean } {
  validateNewRefund(order, spec);
  const existing = own(order.refunds, spec.refundId);
  if (existing) {
    if (sameRefundRequest(existing, spec)) return { order, refund: existing, created: false };
    throw new RefundConflictError(`refund ${spec.refundId} already exists with different lines or amount`);
  }
  const missing = shortfall(order, spec);
  if (missing) throw new UnitsUnavailableError(missing);
  const refund = newRefundRecord(order.orderId, spec, now);
  const ledger = moveLedger(order, spec, spec.alreadyPaid ? 'record_paid' : 'reserve');
  return { order: { ...order, ...ledger, refunds: { ...order.refunds, [refund.id]: refund }, version: order.version + 1 }, refund, created: true };
}

/** Applies a refund event to the order in memory: the reference model the store must match. */
export function applyRefundEvent(order: Order, refundId: string, event: RefundEvent, ctx: TransitionContext): { order: Order; plan: Plan } {
  const refund = own(order.refunds, refundId);
  if (!refund) throw new RefundNotFoundError(`refund ${refundId} not found on order ${order.orderId}`);
  const plan = planTransition(refund, event, ctx);
  if (!plan.ok) return { order, plan };
  const ledger = moveLedger(order, refund, plan.ledger);
  return { order: { ...order, ...ledger, refunds: { ...order.refunds, [refundId]: plan.refund }, version: order.version + 1 }, plan };
}

/** Records that Apace asked the verification URL (the claim the `apace_quiet` guard looks at). */
export function recordVerification(order: Order, refundId: string, now: string): Order {
  const refund = own(order.refunds, refundId);
  if (!refund) throw new RefundNotFoundError(`refund ${refundId} not found on order ${order.orderId}`);
  const verified = { ...refund, lastVerifiedAt: now, verifications: (refund.verifications ?? 0) + 1 };
  return { ...order, refunds: { ...order.refunds, [refundId]: verified } };
}

/**
 * Every way the ledger can be wrong: counters that do not add up, a negative count, or counters
 * that disagree with the refunds' states. Empty when the order is consistent.
 */
export function ledgerViolations(order: Order): string[] {
  const problems: string[] = [];
  const expectedLines = new Map<string, { reserved: number; refunded: number }>();
  const expectedPayments = new Map<string, { reserved: number; refunded: number }>();
  for (const refund of Object.values(order.refunds)) {
    const bucket = refund.state === 'paid' ? 'refunded' : HOLDING_STATES.has(refund.state) ? 'reserved' : undefined;
    if (!bucket) continue;
    for (const [lineId, units] of Object.entries(refund.lines)) {
      const sums = expectedLines.get(lineId) ?? { reserved: 0, refunded: 0 };
      sums[bucket] += units;
      expectedLines.set(lineId, sums);
    }
    const sums = expectedPayments.get(refund.paymentId) ?? { reserved: 0, refunded: 0 };
    sums[bucket] += refund.amount.minor;
    expectedPayments.set(refund.paymentId, sums);
  }
  for (const [lineId, line] of Object.entries(order.lines)) {
    const expected = expectedLines.get(lineId) ?? { reserved: 0, refunded: 0 };
    if (line.reserved + line.refunded > line.purchased) problems.push(`line ${lineId}: reserved + refunded > purchased`);
    if (line.available !== line.purchased - line.reserved - line.refunded) problems.push(`line ${lineId}: available out of step`);
    if (line.reserved < 0 || line.refunded < 0 || line.available < 0) problems.push(`line ${lineId}: negative counter`);
    if (line.reserved !== expected.reserved || line.refunded !== expected.refunded) {
      problems.push(`line ${lineId}: ledger ${line.reserved}/${line.refunded} but refunds say ${expected.reserved}/${expected.refunded}`);
    }
  }
  for (const [paymentId, payment] of Object.entries(order.payments)) {
    const expected = expectedPayments.get(paymentId) ?? { reserved: 0, refunded: 0 };
    if (payment.reservedMinor + payment.refundedMinor > payment.capturedMinor) problems.push(`payment ${paymentId}: over captured`);
    if (payment.availableMinor !== payment.capturedMinor - payment.reservedMinor - payment.refundedMinor) {
      problems.push(`payment ${paymentId}: available out of step`);
    }
    if (payment.reservedMinor !== expected.reserved || payment.refundedMinor !== expected.refunded) {
      problems.push(`payment ${paymentId}: ledger disagrees with refunds`);
    }
  }
  return problems;
}

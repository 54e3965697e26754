import { createHash } from 'node:crypto';
import { ConcurrentChangeError, InvalidInputError, UnknownReferenceError } from '../commons/application-errors';
import { bounded, MAX_NAME_CHARS } from '../commons/bounded';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { parseOrReject } from '../commons/validation';
import { DomainError, InvalidRefundError, OrderNotFoundError, RefundConflictError, TransitionRejectedError, UnitsUnavailableError } from '../domain/errors';
import { compensatedInMoney, DEFAULT_EXCHANGE_RULES, type ExchangePolicy } from '../domain/exchanges';
import { own, shortfall, unitsValue, validateNewRefund, type NewRefund, type Order } from '../domain/order';
import {
  guardHolds,
  HOLDING_STATES,
  SETTLED_ELSEWHERE_AT_REF,
  SETTLED_ELSEWHERE_REF,
  type Refund,
  type RefundEvent,
  type RefundState,
  type TransitionContext,
} from '../domain/refund';
import { rmaPushSchema, type RmaPush } from '../providers/refundid/schemas';
import { RMA_OUTCOME_EVENTS, refundidOwnRefundId, refundidRefundId } from '../providers/refundid/statuses';
import type { Audit, OrderStore } from '../store/order-store';
import { AP21_RETURN_REF } from './ap21-ledger';
import { reportPaidTwice } from './paid-twice';

export interface RmaAnswer {
  readonly received: true;
  readonly refund_id: string;
  /** The refund's state after the push; `not_reserved` when the RMA never held units here. */
  readonly state: RefundState | 'not_reserved';
}

interface RmaPlace {
  readonly orderId: string;
  readonly refundId: string;
}

const answer = (refund: Pick<Refund, 'id' | 'state'>): RmaAnswer => ({ received: true, refund_id: refund.id, state: refund.state });

function orderOfLines(push: RmaPush): string | undefined {
  const orders = new Set((push.line_items ?? []).map((item) => item.merchant_order_ref));
  if (orders.size > 1) throw new InvalidInputError('the line items of one RMA must all belong to one order', 'multiple_orders');
  return [...orders][0];
}

/**
 * Where an RMA's units live: the order and refund recorded when the RMA was first seen, else the
 * order its line items name (`merchant_order_ref`, our order id as the order fetch gave it) and
 * the refund id the id rule gives. `seen` learns the RMA's order as soon as it is known.
 */
async function locate(store: OrderStore, push: RmaPush, seen: { orderId?: string }): Promise<RmaPlace | undefined> {
  const named = orderOfLines(push);
  const linked = await store.findReference('refundid_rma', push.refundid_id);
  if (linked) {
    seen.orderId = linked.orderId;
    if (named !== undefined && named !== linked.orderId) {
      throw new InvalidInputError(`RMA ${push.refundid_id} belongs to order ${linked.orderId}, not ${named}`, 'order_mismatch');
    }
    return { orderId: linked.orderId, refundId: linked.refundId ?? refundidRefundId(push) };
  }
  return named === undefined ? undefined : { orderId: named, refundId: refundidRefundId(push) };
}

/** A refund of another RMA: the one whose `merchant_rma_ref` this RMA reuses (a customer starting again after a failed RMA). */
function ofAnotherRma(refund: Refund | undefined, push: RmaPush): boolean {
  return refund !== undefined && refund.source.kind === 'refundid_rma' && refund.source.ref !== push.refundid_id;
}

/**
 * The refund id this RMA's units go to: the one `locate` found, unless another RMA holds it (its
 * `merchant_rma_ref` reused, docs/design.md §2.3), then `rfd-<refundid_id>`, which no other RMA can hold.
 */
function placeOwn(order: Order, place: RmaPlace, push: RmaPush): RmaPlace {
  const ownId = refundidOwnRefundId(push);
  if (place.refundId === ownId || !ofAnotherRma(own(order.refunds, place.refundId), push)) return place;
  return { orderId: place.orderId, refundId: ownId };
}

/** On a Refundid refund's `refs`: the part of its value no single payment had left, not booked (minor units). */
export const UNBOOKED_REF = 'refundidUnbookedMinor';

/**
 * The refund an RMA asks for: its units per order line, priced from the ledger (each line's value
 * shared over its units, rounded down) rather than from the push, against the first payment (by
 * id) that still covers it. Refundid pays the customer itself; what the ledger records is that
 * these units and this money must never be refunded through another channel. Units compensated by
 * exchange or credit are taken like the others but add no money (docs/design.md §2.8). Money no
 * single payment has left (a split-tender order) straddles payments (docs/design.md §2.7): it is
 * booked against the payment with most left, capped at what it has, the rest named in
 * `refs.refundidUnbookedMinor` for an operator to divide; the units are booked all the same.
 */
function refundSpec(order: Order, push: RmaPush, refundId: string, alreadyPaid: boolean, policy: ExchangePolicy): NewRefund {
  if (!push.line_items) throw new InvalidInputError(`a "${push.status}" push for an RMA not reserved here must list its line items`, 'missing_line_items');
  const units = new Map<string, number>();
  const settledBy = new Set<string>();
  for (const item of push.line_items) {
    units.set(item.line_item_ref, (units.get(item.line_item_ref) ?? 0) + item.quantity);
    if (!compensatedInMoney(item.compensation_method, { policy })) {
      settledBy.add(`Refundid ${String(item.compensation_method).trim().toLowerCase()} (line ${item.line_item_ref})`);
    }
  }
  for (const [lineId, count] of units) {
    const line = Object.hasOwn(order.lines, lineId) ? order.lines[lineId] : undefined;
    if (!line) throw new InvalidRefundError(`order ${order.orderId} has no line ${lineId}`);
    if (count > line.purchased) throw new InvalidRefundError(`line ${lineId}: only ${line.purchased} unit(s) were purchased`);
  }
  const value = moneyOf(order, push, policy);
  const payments = Object.entries(order.payments).sort(([a], [b]) => a.localeCompare(b));
  const covering = payments.find(([, payment]) => payment.availableMinor >= value);
  const most = [...payments].sort(([a, x], [b, y]) => y.availableMinor - x.availableMinor || a.localeCompare(b))[0];
  const straddles = covering === undefined && most !== undefined && most[1].availableMinor > 0;
  const [paymentId] = (straddles ? most : covering) ?? payments[0] ?? [];
  if (paymentId === undefined) throw new InvalidRefundError(`order ${order.orderId} has no payment to refund`);
  const amount = straddles ? most[1].availableMinor : value;
  const spec: NewRefund = {
    refundId,
    lines: Object.fromEntries(units),
    paymentId,
    amount: { minor: amount, currency: order.currency },
    route: 'refundid',
    source: { kind: 'refundid_rma', ref: push.refundid_id },
    ...(alreadyPaid && { alreadyPaid: true }),
    ...(settledBy.size > 0 && { settledBy: [...settledBy].join(', ') }),
    ...(straddles && { refs: { [UNBOOKED_REF]: String(value - amount) } }),
  };
  validateNewRefund(order, spec);
  return spec;
}

/** What the push's units compensated in money are worth, priced from the ledger per line (lines the order lacks count 0). */
function moneyOf(order: Order, push: RmaPush, policy: ExchangePolicy): number {
  const inMoney = new Map<string, number>();
  for (const item of push.line_items ?? []) {
    if (compensatedInMoney(item.compensation_method, { policy })) inMoney.set(item.line_item_ref, (inMoney.get(item.line_item_ref) ?? 0) + item.quantity);
  }
  let value = 0;
  for (const [lineId, count] of inMoney) {
    const line = own(order.lines, lineId);
    if (line) value += unitsValue(line, count);
  }
  return value;
}

/**
 * The refunds of other channels on the lines `spec` is short of that Refundid's payment concerns:
 * those holding units (money not sent, or maybe on its way) and those already paid (card, Apace, exchange).
 */
function heldElsewhere(order: Order, spec: NewRefund): Refund[] {
  const short = Object.entries(spec.lines)
    .filter(([lineId, units]) => (own(order.lines, lineId)?.available ?? 0) < units)
    .map(([lineId]) => lineId);
  return Object.values(order.refunds).filter(
    (refund) =>
      refund.id !== spec.refundId &&
      refund.channel !== 'refundid' &&
      (HOLDING_STATES.has(refund.state) || refund.state === 'paid') &&
      short.some((lineId) => own(refund.lines, lineId) !== undefined),
  );
}

/**
 * The one conditional write that marks `refund` paid by Refundid (docs/design.md §2.3), as a read of
 * Ap21 marks a refund settled elsewhere: not sent yet → manual review (a live Apace offer cancelled
 * first); a card reversal in flight → the mark only, never submitted again; a card reversal paid →
 * the mark, the customer paid twice. None when there is nothing to write (marked already, or an
 * Apace payout under way).
 */
function stopMove(refund: Refund, reason: string, now: string): { event: RefundEvent; ctx: TransitionContext } | undefined {
  // No claim window: this path never sends money elsewhere, so a payout Apace approved just before is booked as Apace's.
  const refs = { [SETTLED_ELSEWHERE_REF]: reason, [SETTLED_ELSEWHERE_AT_REF]: now };
  const marked = refund.refs[SETTLED_ELSEWHERE_REF] !== undefined;
  switch (refund.state) {
    case 'offer_pending':
    case 'offered':
      return { event: 'offer_cancel_started', ctx: { now, claimWindowMs: 0, reason, refs } };
    case 'offer_cancelling':
      return marked ? undefined : { event: 'settled_elsewhere_noted', ctx: { now, claimWindowMs: 0, refs } };
    case 'reversal_pending':
      return { event: 'review_required', ctx: { now, claimWindowMs: 0, reason, refs } };
    case 'reversal_submitted':
      return marked || refund.channel !== 'reversal' ? undefined : { event: 'settled_elsewhere_noted', ctx: { now, claimWindowMs: 0, refs } };
    case 'paid':
      return marked ? undefined : { event: 'paid_twice_noted', ctx: { now, claimWindowMs: 0, refs } };
    case 'awaiting_receipt':
      return { event: 'receipt_release_refused', ctx: { now, claimWindowMs: 0, reason, refs } };
    case 'manual_review':
      // In review only because its receipt was overdue, a receipt seen later would still release it to the card.
      if (guardHolds(refund, 'receipt_awaited', { now, claimWindowMs: 0 }))
        return { event: 'receipt_release_refused', ctx: { now, claimWindowMs: 0, reason, refs } };
      // Else with an operator already: the mark tells them Refundid paid.
      return marked ? undefined : { event: 'external_ref_recorded', ctx: { now, claimWindowMs: 0, refs } };
    default:
      return undefined;
  }
}

/** The refund ref naming the Refundid RMA a refund recorded from Ap21 was attached to. */
export const REFUNDID_RMA_REF = 'refundidId';
/** On a record of Ap21 withdrawn as a second booking of one Refundid payout: the refund that books it. */
export const REFUNDID_BOOKED_AS_REF = 'refundidBookedAs';

/** The refund that books an RMA's units again when Refundid pays after its `failed` released them. */
const REBOOKED_SUFFIX = '-paid';

/** Rounds of re-deciding an attach that another RMA's attach overtook. */
const ATTACH_ROUNDS = 3;
/**
 * Longer than any push's link-then-create can take (an API invocation ends within API Gateway's
 * 29 s): a link to a refund that still does not exist after this is stale, never a create under way.
 */
const STALE_LINK_MS = 30_000;

/** A Refundid refund recorded from Ap21 that no RMA has been attached to yet. */
function unattachedFromAp21(refund: Refund): boolean {
  return refund.source.kind === 'ap21_refundid' && refund.channel === 'refundid' && refund.refs[REFUNDID_RMA_REF] === undefined;
}

/**
 * The Refundid refund the poller already recorded from Ap21 that this push stands for: a return or
 * negative order Ap21 shows paid by Refundid (source `ap21_refundid`, refs carrying the Ap21 ids
 * and the Refundid payment's Stan) that the push names by `refundid_id` or `merchant_rma_ref`, else
 * the oldest with exactly the push's units; never one attached to another RMA. Mirrors how the
 * poller ties an Ap21 return to an RMA that came first (`matchingRefundidRma`).
 */
function recordedFromAp21(order: Order, push: RmaPush): Refund | undefined {
  const candidates = Object.values(order.refunds)
    .filter((refund) => refund.source.kind === 'ap21_refundid' && refund.channel === 'refundid' && refund.state === 'paid')
    .filter((refund) => (refund.refs[REFUNDID_RMA_REF] ?? push.refundid_id) === push.refundid_id)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const names = [push.refundid_id, push.merchant_rma_ref].filter((name): name is string => typeof name === 'string');
  const named = candidates.find((refund) => [refund.id, refund.source.ref, ...Object.values(refund.refs)].some((value) => names.includes(value)));
  if (named) {
    if (!sameLines(named, push)) {
      throw new RefundConflictError(
        `RMA ${push.refundid_id} names refund ${named.id}, recorded from Ap21, but with other line items; an operator must reconcile`,
      );
    }
    return named;
  }
  return push.line_items ? candidates.find((refund) => sameLines(refund, push)) : undefined;
}

/**
 * Ap21's record of the payout `booking` (this RMA's refund, paid) books as well: recorded from Ap21
 * after this push read the order and before it wrote (docs/design.md §2.3), so neither saw the other.
 * The one `booking` is tied to already (`tiedTo`, its Ap21 return id), else one no RMA is attached to
 * with exactly the booking's units that names this RMA. Units alone are no proof: a record of another
 * RMA's payout for identical units (a second shirt) looks the same, and withdrawing it would free units
 * Refundid paid for, so such a pair keeps both bookings.
 */
function twinRecordedFromAp21(order: Order, push: RmaPush, booking: Refund): Refund | undefined {
  const tiedTo = booking.refs[AP21_RETURN_REF];
  const records = Object.values(order.refunds)
    .filter((refund) => unattachedFromAp21(refund) && refund.state === 'paid')
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  if (tiedTo !== undefined) return records.find((refund) => (refund.refs[AP21_RETURN_REF] ?? refund.source.ref) === tiedTo);
  const units = Object.entries(booking.lines);
  const same = records.filter(
    (refund) => Object.keys(refund.lines).length === units.length && units.every(([lineId, count]) => refund.lines[lineId] === count),
  );
  const names = [push.refundid_id, push.merchant_rma_ref].filter((name): name is string => typeof name === 'string');
  return same.find((refund) => [refund.id, refund.source.ref, ...Object.values(refund.refs)].some((value) => names.includes(value)));
}

function sameLines(refund: Refund, push: RmaPush): boolean {
  if (!push.line_items) return true;
  const units = new Map<string, number>();
  for (const item of push.line_items) units.set(item.line_item_ref, (units.get(item.line_item_ref) ?? 0) + item.quantity);
  return units.size === Object.keys(refund.lines).length && [...units].every(([lineId, count]) => refund.lines[lineId] === count);
}

/**
 * Applies one RMA status push (docs/design.md §2.2: refunding → refundid_pending → paid | released).
 * Idempotent on `refundid_id`; repeats and late pushes are answered from the refund's state and
 * kept once in the inbox. Out of order:
 * - `refundid` before `refunding`: Refundid has already paid, so the units are booked as refunded
 *   straight away (or refused as units unavailable, and flagged, when another channel holds them);
 * - `failed` before `refunding`: the units are reserved and released at once, so the late
 *   `refunding` finds a released refund and reserves nothing;
 * - `refundid` after `failed`, or `failed` after `refundid`: contradictions, kept and flagged.
 */
export async function applyRmaPush(
  store: OrderStore,
  push: RmaPush,
  raw: string,
  ctx: TransitionContext,
  exchangePolicy: ExchangePolicy = DEFAULT_EXCHANGE_RULES.policy,
): Promise<RmaAnswer> {
  const seen: { orderId?: string } = {};
  try {
    return await applyPush(store, push, raw, ctx, exchangePolicy, seen);
  } catch (error) {
    if (push.status === 'refundid' && refusal(error)) await keepRefusedPayment(store, push, raw, ctx.now, seen.orderId, error);
    throw error;
  }
}

/** What a push is refused for (4xx): its data, not our availability (a 5xx is retried by Refundid). */
function refusal(error: unknown): error is Error {
  return error instanceof DomainError || error instanceof InvalidInputError || error instanceof UnknownReferenceError;
}

/**
 * Refundid paid before it pushed `refundid`: a push refused is money the ledger does not show, so it
 * is kept for an operator (on its order when it names one, else unmatched) and logged as an error,
 * once per distinct push however often Refundid retries it.
 */
async function keepRefusedPayment(
  store: OrderStore,
  push: Pick<RmaPush, 'refundid_id'>,
  raw: string,
  now: string,
  orderId: string | undefined,
  error: Error,
): Promise<void> {
  const key = createHash('sha256').update(raw).digest('hex');
  const record = { source: 'refundid' as const, key, raw, note: `RMA ${push.refundid_id} refundid: Refundid paid, but the push was refused: ${error.message}` };
  const { stored } = orderId === undefined ? await store.recordUnmatchedInbound(record, now) : await store.recordInbound(orderId, record, now);
  if (stored) logger.error('Refundid paid an RMA whose push was refused', { order_id: orderId, refundid_id: push.refundid_id, reason: error.message });
}

/**
 * Reads Refundid's push (422 naming every problem). A `refundid` push refused here is money Refundid
 * already paid: it is kept, unmatched, and logged first (`keepRefusedPayment`).
 */
export async function readRmaPush(store: OrderStore, value: unknown, raw: string, now: string): Promise<RmaPush> {
  try {
    return parseOrReject(rmaPushSchema, value, 'RMA push');
  } catch (error) {
    const claimed = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
    if (error instanceof InvalidInputError && claimed.status === 'refundid') {
      await keepRefusedPayment(store, { refundid_id: bounded(String(claimed.refundid_id), MAX_NAME_CHARS) }, raw, now, undefined, error);
    }
    throw error;
  }
}

async function applyPush(
  store: OrderStore,
  push: RmaPush,
  raw: string,
  ctx: TransitionContext,
  exchangePolicy: ExchangePolicy,
  seen: { orderId?: string },
): Promise<RmaAnswer> {
  const located = await locate(store, push, seen);
  if (!located) throw new UnknownReferenceError(`RMA ${push.refundid_id} is not known here and its push names no order`, 'rma_not_found');
  const order = await store.getOrder(located.orderId);
  if (!order) throw new OrderNotFoundError(`order ${located.orderId} not found`);
  seen.orderId = order.orderId;
  const place = placeOwn(order, located, push);
  const rma = new RmaHandling(store, push, raw, ctx, order, place, exchangePolicy);
  const existing = order.refunds[place.refundId];
  if (!existing) {
    const recorded = recordedFromAp21(order, push);
    if (recorded) return rma.attach(recorded);
  } else if (unattachedFromAp21(existing) && recordedFromAp21(order, push)?.id === existing.id) {
    // The RMA was linked to this recorded refund, and the attach stopped before the refund took
    // its id (a crash, an error): Refundid's retry resumes it.
    return rma.attach(existing);
  }
  const ours = existing?.source.kind === 'refundid_rma' ? existing.source.ref === push.refundid_id : existing?.refs[REFUNDID_RMA_REF] === push.refundid_id;
  if (existing && !ours) {
    throw new RefundConflictError(`refund ${place.refundId} exists and is not Refundid RMA ${push.refundid_id}`);
  }
  if (existing && !sameLines(existing, push)) throw new RefundConflictError(`RMA ${push.refundid_id} was reserved with other line items`);
  switch (push.status) {
    case 'refunding':
      return existing ? answer(existing) : rma.reserve();
    case 'refundid':
      return rma.paid(existing);
    case 'failed':
      return rma.failed(existing);
  }
}

class RmaHandling {
  private readonly audit: Audit;

  constructor(
    private readonly store: OrderStore,
    private readonly push: RmaPush,
    private readonly raw: string,
    private readonly ctx: TransitionContext,
    private readonly order: Order,
    private readonly place: RmaPlace,
    private readonly exchangePolicy: ExchangePolicy,
  ) {
    this.audit = { actor: 'refundid', raw, note: `Refundid RMA ${push.refundid_id}: ${push.status}` };
  }

  private spec(alreadyPaid: boolean): NewRefund {
    return refundSpec(this.order, this.push, this.place.refundId, alreadyPaid, this.exchangePolicy);
  }

  async reserve(): Promise<RmaAnswer> {
    const spec = this.spec(false);
    // The order fetch answered these units 0 returnable with the reason: an RMA for them is refused
    // before Refundid pays (docs/design.md §2.7). One Refundid already paid is booked (the money moved).
    for (const lineId of Object.keys(spec.lines)) {
      const reason = this.order.lines[lineId]?.nonReturnable;
      if (reason !== undefined) throw new InvalidInputError(`line ${lineId}: ${reason}`, 'not_returnable');
    }
    // Refused before anything is written: the conditional write below still decides races.
    const missing = shortfall(this.order, spec);
    if (missing) throw new UnitsUnavailableError(missing);
    return answer(await this.create(spec));
  }

  async paid(existing: Refund | undefined): Promise<RmaAnswer> {
    let refund = existing;
    if (!refund) {
      const spec = this.spec(true);
      const missing = shortfall(this.order, spec);
      if (missing) return this.paidForHeldUnits(spec, missing, this.order);
      try {
        refund = await this.create(spec);
      } catch (error) {
        if (!(error instanceof UnitsUnavailableError)) throw error;
        // Another refund took the units between our read and our write.
        return this.paidForHeldUnits(spec, error.message, (await this.store.getOrder(this.order.orderId)) ?? this.order);
      }
      if (refund.state === 'paid') {
        await this.withdrawTwin(refund);
        return answer(refund);
      }
    }
    const drift = existing && this.compensationDrift(existing);
    const audit = drift === undefined ? this.audit : { ...this.audit, note: `${this.audit.note}; ${drift}` };
    const outcome = await this.store.applyEvent(this.order.orderId, refund.id, RMA_OUTCOME_EVENTS.refundid, this.ctx, audit, refund);
    if (outcome.applied) {
      if (drift !== undefined)
        logger.error('Refundid settled an RMA with other compensation than reserved', { order_id: this.order.orderId, refund_id: refund.id, drift });
      await this.withdrawTwin(outcome.refund);
      return answer(outcome.refund);
    }
    if (outcome.refund.state === 'paid' && outcome.refund.channel === 'refundid') {
      await this.keep('repeat: already paid through Refundid');
      // A retry after a failure between our booking and its check finishes the check.
      await this.withdrawTwin(outcome.refund);
      return answer(outcome.refund);
    }
    // Refundid paid after all for units its `failed` released: they are booked again, so no other channel pays them.
    const rebooked = outcome.refund.state === 'released' && outcome.refund.source.kind === 'refundid_rma' ? await this.rebook(outcome.refund) : '';
    await this.keep(`Refundid paid, but the refund is ${outcome.refund.state}${rebooked}`);
    logger.error('Refundid paid an RMA whose refund is no longer reserved', {
      order_id: this.order.orderId,
      refund_id: refund.id,
      state: outcome.refund.state,
    });
    throw new TransitionRejectedError(
      `Refundid says it paid RMA ${this.push.refundid_id}, but refund ${refund.id} is ${outcome.refund.state}; an operator must reconcile`,
    );
  }

  /**
   * After this RMA's refund was booked paid: a read of Ap21 may have recorded the same payout between
   * this push's read and its write, each side blind to the other, and the order had units for both
   * (docs/design.md §2.3). The order is read again (one read per booking push); such a record is
   * withdrawn (`refundid_record_withdrawn`: units and money back to available) once the RMA's refund
   * is tied to its Ap21 return (`refs.ap21ReturnId`). Both are conditional writes the poller makes
   * too, from its side: the tie is first-wins, and the record is withdrawn only while paid with no
   * RMA attached, so whoever writes last, one booking remains. Refundid's retry of a push that failed
   * in between finishes it.
   */
  private async withdrawTwin(booking: Refund): Promise<void> {
    for (let round = 0; round < ATTACH_ROUNDS; round++) {
      const current = await this.store.getOrder(this.order.orderId);
      const mine = current && own(current.refunds, booking.id);
      if (!current || mine?.state !== 'paid' || mine.channel !== 'refundid') return;
      const twin = twinRecordedFromAp21(current, this.push, mine);
      if (!twin) return;
      if (mine.refs[AP21_RETURN_REF] === undefined) {
        const refs = { [AP21_RETURN_REF]: twin.refs[AP21_RETURN_REF] ?? twin.source.ref };
        const audit = { ...this.audit, note: `${this.audit.note}; Ap21 shows this payout too, recorded meanwhile as refund ${twin.id}: tied to it` };
        const tied = await this.store.applyEvent(this.order.orderId, mine.id, 'external_ref_recorded', { ...this.ctx, refs }, audit, mine);
        // Tied to another return, or by the poller itself, meanwhile: read again.
        if (!tied.applied) continue;
      }
      const reason = `Refundid's payout of RMA ${this.push.refundid_id} is booked as refund ${mine.id}: this record of it withdrawn, not booked twice`;
      const ctx = { ...this.ctx, reason, refs: { [REFUNDID_RMA_REF]: this.push.refundid_id, [REFUNDID_BOOKED_AS_REF]: mine.id } };
      const withdrawn = await this.store.applyEvent(this.order.orderId, twin.id, 'refundid_record_withdrawn', ctx, { ...this.audit, note: reason }, twin);
      if (withdrawn.applied) {
        logger.warn('a Refundid payout was booked twice at once: the record from Ap21 is withdrawn', {
          order_id: this.order.orderId,
          refund_id: mine.id,
          withdrawn: twin.id,
        });
        return;
      }
    }
    throw new ConcurrentChangeError(`RMA ${this.push.refundid_id}: the refunds recorded from Ap21 kept changing; try again`);
  }

  /**
   * Books the units of an RMA refund that `failed` released as paid through Refundid after all, in a
   * refund of their own (`<refund id>-paid`, deterministic: Refundid's retries find it), so that no
   * other channel pays them (docs/design.md §2.3). Units another refund took meanwhile: that refund is
   * stopped instead (`paidForHeldUnits`, 409). Answers what the kept push's note adds.
   */
  private async rebook(released: Refund): Promise<string> {
    const bookingId = `${released.id}${REBOOKED_SUFFIX}`;
    const current = (await this.store.getOrder(this.order.orderId)) ?? this.order;
    const rebooked = own(current.refunds, bookingId);
    if (rebooked) {
      // A retry after a failure between the re-booking and its check finishes the check.
      await this.withdrawTwin(rebooked);
      return `; its units are booked as refund ${bookingId}`;
    }
    // The poller recorded this payout from Ap21 meanwhile (nothing reserved to tie it to): it is the booking.
    const recorded = recordedFromAp21(current, this.push);
    if (recorded) {
      if (recorded.refs[REFUNDID_RMA_REF] === undefined) {
        const refs = { [REFUNDID_RMA_REF]: this.push.refundid_id };
        const audit = { ...this.audit, note: `${this.audit.note}: paid after the RMA failed, as Ap21 shows; attached to refund ${recorded.id}` };
        await this.store.applyEvent(this.order.orderId, recorded.id, 'external_ref_recorded', { ...this.ctx, refs }, audit, recorded);
      }
      return `; Ap21 shows it paid by Refundid as refund ${recorded.id}`;
    }
    const spec = refundSpec(current, this.push, bookingId, true, this.exchangePolicy);
    const missing = shortfall(current, spec);
    if (missing) return this.paidForHeldUnits(spec, missing, current);
    const note = `${this.audit.note}: paid after the RMA failed, its units booked again`;
    let booked: Refund;
    try {
      booked = (await this.store.createRefund(this.order.orderId, spec, this.ctx.now, { ...this.audit, note })).refund;
    } catch (error) {
      if (!(error instanceof UnitsUnavailableError)) throw error;
      return this.paidForHeldUnits(spec, error.message, (await this.store.getOrder(this.order.orderId)) ?? current);
    }
    // The poller may have recorded this payout from Ap21 since our read, as for a first booking.
    await this.withdrawTwin(booked);
    return `; its units are booked again as refund ${bookingId}`;
  }

  /**
   * What the final push says about money that the reservation did not: a line's `compensation_method`
   * changed between `refunding` and `refundid` (refund ↔ exchange or credit, docs/design.md §2.8). The
   * units are settled either way; the refund keeps the amount it was reserved with, and the
   * disagreement is named for an operator. Undefined when they agree.
   */
  private compensationDrift(reserved: Refund): string | undefined {
    if (!this.push.line_items) return undefined;
    const paidMinor = moneyOf(this.order, this.push, this.exchangePolicy);
    const reservedMinor = reserved.amount.minor + Number(reserved.refs[UNBOOKED_REF] ?? 0);
    if (paidMinor === reservedMinor) return undefined;
    return `compensated differently than reserved: Refundid's final push is worth ${paidMinor}, the refund was reserved with ${reservedMinor} (minor units, ${reserved.amount.currency}); the ledger keeps ${reserved.amount.minor}, an operator must reconcile`;
  }

  /**
   * Refundid paid the customer for units another refund holds (docs/design.md §2.3). The push is
   * refused (409) and kept, and every refund of another channel on those lines is marked in one
   * conditional write (`stopMove`), so no other channel pays the same units again: one that has sent
   * no money goes to manual review (a live Apace offer cancelled first, never on to the card), a card
   * reversal in flight is never submitted again, and one already paid is reported paid twice.
   */
  private async paidForHeldUnits(spec: NewRefund, missing: string, order: Order): Promise<never> {
    const note = `Refundid paid, but ${missing}`;
    await this.keep(note);
    const reason = `Refundid RMA ${this.push.refundid_id} paid the customer for these units: no money on any other channel; release it once reconciled`;
    const outcomes: string[] = [];
    for (const held of heldElsewhere(order, spec)) outcomes.push(`${held.id}: ${await this.stop(held, reason)}`);
    logger.error('Refundid paid for units another channel holds', {
      order_id: this.order.orderId,
      refundid_id: this.push.refundid_id,
      reason: missing,
      other_refunds: outcomes.join(', '),
    });
    throw new UnitsUnavailableError(`Refundid paid RMA ${this.push.refundid_id}, but ${missing}; an operator must reconcile`);
  }

  /** Marks `held` (`stopMove`), reading it again when it moved meanwhile; answers what became of it, for the log. */
  private async stop(held: Refund, reason: string): Promise<string> {
    let current: Refund | undefined = held;
    for (let round = 0; round < ATTACH_ROUNDS && current; round++) {
      const move = stopMove(current, reason, this.ctx.now);
      if (!move) return `${current.state}, not marked`;
      const audit = { ...this.audit, note: reason };
      const outcome = await this.store.applyEvent(this.order.orderId, current.id, move.event, move.ctx, audit, current);
      if (outcome.applied) {
        const fields = { order_id: this.order.orderId, refund_id: current.id, reason };
        if (outcome.refund.state === 'manual_review' && current.state !== 'manual_review') emitMetric('RefundsInManualReview', 1);
        if (move.event === 'paid_twice_noted') reportPaidTwice(this.order.orderId, current.id, reason);
        if (move.event === 'settled_elsewhere_noted' && current.state === 'reversal_submitted') {
          logger.warn('Refundid paid the units of a card reversal in flight: not submitted again', fields);
          emitMetric('ReversalsInFlightSettledElsewhere', 1);
        }
        return `${current.state} → ${outcome.refund.state} (${move.event})`;
      }
      if (outcome.why !== 'superseded') return `${current.state}, refused (${outcome.why})`;
      current = own((await this.store.getOrder(this.order.orderId))?.refunds ?? {}, held.id);
    }
    return 'kept changing';
  }

  /**
   * Ties this RMA to the refund the poller recorded from Ap21 for it (idempotent: later pushes find
   * it through the RMA's reference). Refundid has paid, so there is nothing to reserve or settle; a
   * `failed` contradicts what Ap21 shows and is kept for an operator. Two RMAs with the same units
   * may race for one recorded refund: the loser decides again on the fresh order, its reference
   * moved to the refund it takes, and is never answered with the winner's refund.
   */
  async attach(recorded: Refund): Promise<RmaAnswer> {
    let candidate: Refund | undefined = recorded;
    for (let round = 0; round < ATTACH_ROUNDS && candidate; round++) {
      await this.linkTo(candidate);
      const refs = {
        [REFUNDID_RMA_REF]: this.push.refundid_id,
        ...(typeof this.push.merchant_rma_ref === 'string' && { refundidMerchantRmaRef: this.push.merchant_rma_ref }),
      };
      const audit = { ...this.audit, note: `${this.audit.note}; attached to refund ${candidate.id}, recorded from Ap21` };
      const outcome = await this.store.applyEvent(this.order.orderId, candidate.id, 'external_ref_recorded', { ...this.ctx, refs }, audit, candidate);
      if (outcome.applied || outcome.refund.refs[REFUNDID_RMA_REF] === this.push.refundid_id) {
        logger.info('Refundid RMA attached to the refund recorded from Ap21', { order_id: this.order.orderId, refund_id: candidate.id });
        if (this.push.status === 'failed') {
          await this.keep(`failed, but Ap21 shows refund ${candidate.id} paid by Refundid`);
          logger.error('Refundid reports a failed RMA that Ap21 shows it paid', { order_id: this.order.orderId, refund_id: candidate.id });
        }
        return answer(outcome.refund);
      }
      // Another RMA took it meanwhile: look again.
      const fresh = await this.store.getOrder(this.order.orderId);
      candidate = fresh && recordedFromAp21(fresh, this.push);
    }
    if (candidate) throw new ConcurrentChangeError(`RMA ${this.push.refundid_id}: the refunds recorded from Ap21 kept changing; try again`);
    throw new RefundConflictError(`RMA ${this.push.refundid_id}: no refund recorded from Ap21 is left for it; an operator must reconcile`);
  }

  /**
   * Points the RMA's reference at `target`. A reference to another refund of this order that is
   * provably not this RMA's (taken by another RMA, or never created and older than a create could
   * still be under way) is moved; any other is a conflict.
   */
  private async linkTo(target: Refund): Promise<void> {
    const wanted = { orderId: this.order.orderId, refundId: target.id };
    const linked = await this.store.linkReference('refundid_rma', this.push.refundid_id, wanted, this.ctx.now);
    if (linked.orderId === wanted.orderId && linked.refundId === wanted.refundId) return;
    const conflict = () =>
      new RefundConflictError(`RMA ${this.push.refundid_id} is already recorded as refund ${linked.refundId ?? '?'} of order ${linked.orderId}`);
    if (linked.orderId !== wanted.orderId || linked.refundId === undefined) throw conflict();
    const current = await this.store.getOrder(this.order.orderId);
    const named = current && Object.hasOwn(current.refunds, linked.refundId) ? current.refunds[linked.refundId] : undefined;
    const takenByAnother = named !== undefined && named.refs[REFUNDID_RMA_REF] !== undefined && named.refs[REFUNDID_RMA_REF] !== this.push.refundid_id;
    if (named !== undefined && !takenByAnother) throw conflict();
    // A refund that does not exist may still be created by a push linking it a moment ago: only a link older than that is stale.
    const linkedBefore = named === undefined ? new Date(Date.parse(this.ctx.now) - STALE_LINK_MS).toISOString() : undefined;
    if (await this.store.relinkReference('refundid_rma', this.push.refundid_id, linked, wanted, this.ctx.now, linkedBefore)) return;
    throw new ConcurrentChangeError(`RMA ${this.push.refundid_id} is being recorded by another delivery; try again`);
  }

  async failed(existing: Refund | undefined): Promise<RmaAnswer> {
    let refund = existing;
    if (!refund) {
      if (!this.push.line_items) {
        await this.keep('failed before any reservation; nothing to release');
        return { received: true, refund_id: this.place.refundId, state: 'not_reserved' };
      }
      try {
        refund = await this.create(this.spec(false));
      } catch (error) {
        if (!(error instanceof UnitsUnavailableError)) throw error;
        await this.keep(`failed before any reservation, and ${error.message}`);
        return { received: true, refund_id: this.place.refundId, state: 'not_reserved' };
      }
    }
    const outcome = await this.store.applyEvent(this.order.orderId, refund.id, RMA_OUTCOME_EVENTS.failed, this.ctx, this.audit, refund);
    if (outcome.applied) return answer(outcome.refund);
    await this.keep(`failed, but the refund is ${outcome.refund.state}`);
    if (outcome.refund.state !== 'released') {
      logger.error('Refundid reports a failed RMA whose refund is not reserved', {
        order_id: this.order.orderId,
        refund_id: refund.id,
        state: outcome.refund.state,
      });
    }
    return answer(outcome.refund);
  }

  /**
   * Records the RMA against its refund first (crash-safe: a link without a refund is "not reserved").
   * A link to another RMA's refund (both first seen at once with one `merchant_rma_ref`, the other
   * created it) is moved to this RMA's own refund id, which the refund then takes.
   */
  private async create(spec: NewRefund): Promise<Refund> {
    const target = { orderId: this.order.orderId, refundId: spec.refundId };
    const linked = await this.store.linkReference('refundid_rma', this.push.refundid_id, target, this.ctx.now);
    if (linked.orderId !== target.orderId || linked.refundId !== target.refundId) {
      const moved =
        linked.orderId === target.orderId &&
        linked.refundId !== undefined &&
        ofAnotherRma(own((await this.store.getOrder(target.orderId))?.refunds ?? {}, linked.refundId), this.push) &&
        (await this.store.relinkReference('refundid_rma', this.push.refundid_id, linked, target, this.ctx.now));
      if (!moved) {
        throw new RefundConflictError(`RMA ${this.push.refundid_id} is already recorded as refund ${linked.refundId ?? '?'} of order ${linked.orderId}`);
      }
    }
    // The timeline says which units no money is owed for (docs/design.md §2.8), and money no single payment had left (§2.7).
    const settled = spec.settledBy === undefined ? '' : `; settled without money: ${spec.settledBy}`;
    const unbooked = spec.refs?.[UNBOOKED_REF];
    const straddling =
      unbooked === undefined
        ? ''
        : `; the money straddles the order's payments: ${spec.amount.minor} booked against payment ${spec.paymentId}, ${unbooked} not booked, an operator divides it`;
    const audit = { ...this.audit, note: `${this.audit.note}${settled}${straddling}` };
    try {
      return (await this.store.createRefund(this.order.orderId, spec, this.ctx.now, audit)).refund;
    } catch (error) {
      const ownId = refundidOwnRefundId(this.push);
      if (!(error instanceof RefundConflictError) || spec.refundId === ownId) throw error;
      // Another RMA with the same merchant_rma_ref created this refund id since we read the order: take our own.
      if (!ofAnotherRma(own((await this.store.getOrder(target.orderId))?.refunds ?? {}, spec.refundId), this.push)) throw error;
      return this.create({ ...spec, refundId: ownId });
    }
  }

  private async keep(note: string): Promise<void> {
    const key = createHash('sha256').update(this.raw).digest('hex');
    await this.store.recordInbound(
      this.order.orderId,
      { source: 'refundid', key, raw: this.raw, note: `RMA ${this.push.refundid_id} ${this.push.status}: ${note}` },
      this.ctx.now,
    );
  }
}

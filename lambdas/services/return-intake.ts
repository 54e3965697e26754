import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { InvalidRefundError, RefundConflictError, UnitsUnavailableError } from '../domain/errors';
import { formatDecimal, type Money } from '../domain/money';
import {
  decideExchange,
  exchangeShown,
  mayBeExchange,
  needsExchangeLookup,
  statusSaysExchange,
  type ExchangeOrderLookup,
  type ReturnExchangeFacts,
} from '../domain/exchanges';
import { openOrder, own, type NewRefund, type Order, type PaymentProvider } from '../domain/order';
import { fallbackHeldUntilReceipt, returnReceived, waitsForReceipt } from '../domain/receipt';
import {
  RETURN_RECEIVED_REF,
  SETTLED_ELSEWHERE_AT_REF,
  SETTLED_ELSEWHERE_REF,
  WORK_STATES,
  guardHolds,
  planTransition,
  ruleFor,
  type Refund,
  type RefundEvent,
  type RefundSourceKind,
} from '../domain/refund';
import { allocateReturnedUnits, choosePayment, matchingRefundidRma, proportionalValue } from '../domain/returns';
import { paymentForReturn, type TenderDecision } from '../domain/tenders';
import type { Ap21Order, Ap21Return } from '../providers/ap21/schemas';
import { Ap21Error } from '../providers/ap21/statuses';
import { refundStateOf, type Ap21RefundState } from '../providers/ap21/statuses';
import { offerExpiry } from '../providers/apace/config';
import { StoreContentionError, type OrderStore, type StoredOrder } from '../store/order-store';
import {
  AP21_EXCHANGE_ORDER_REF,
  AP21_RETURN_REF,
  afterExchangeRefundId,
  ledgerOrderFrom,
  ledgerOrderId,
  lineReturnFacts,
  returnRefundId,
  type Ap21LedgerSettings,
} from './ap21-ledger';
import { reportPaidTwice } from './paid-twice';
import { REFUNDID_BOOKED_AS_REF, REFUNDID_RMA_REF } from './refundid-rma';
import { chooseRoute, type RoutingPolicy } from './routing';
import type { Doorbell } from './sweeper';

/**
 * Ap21 is read below payload version 4.0, where a return's payments are left out: whether Refundid
 * or Ap21 already refunded it cannot be seen, so nothing may be refunded until AP21_API_VERSION is
 * fixed (a configuration error, not a property of one return).
 */
export class ReturnPaymentsNotVisibleError extends Error {
  override readonly name = 'ReturnPaymentsNotVisibleError';
}

export type IngestOutcome =
  /** A new refund: waiting for the dispatcher, or recorded as paid when Refundid or Ap21 already paid it. */
  | { readonly kind: 'created'; readonly orderId: string; readonly refund: Refund }
  /** The return was ingested before (its refund, or a Refundid RMA tied to it, exists): nothing changed. */
  | { readonly kind: 'already_ingested'; readonly orderId: string; readonly refundId: string }
  /** The return is Refundid's refund of an RMA we already had: tied to it and settled, not refunded again. */
  | { readonly kind: 'linked'; readonly orderId: string; readonly refundId: string }
  /** The returned units were worth nothing (free items): there is no money to send. */
  | { readonly kind: 'nothing_to_refund'; readonly orderId: string }
  /** Ap21 now shows the return received: its refund, waiting for that, goes to its channel (docs/design.md §2.9). */
  | { readonly kind: 'received'; readonly orderId: string; readonly refundId: string };

export interface ReturnIntakeDeps {
  readonly store: OrderStore;
  readonly ledger: Ap21LedgerSettings;
  readonly routing: {
    readonly policy: RoutingPolicy;
    /** Whether this stage sends refunds to Apace at all (see `createReturnIntake`). */
    readonly apaceEnabled: boolean;
    readonly offerDays: number;
  };
  /** Wakes the dispatcher for a new refund; without one, the sweeper finds it. */
  readonly doorbell?: Doorbell;
  /**
   * Ap21, asked whether the exchange order a return names exists (`GET /OrderNumbers/{n}`, docs/design.md
   * §2.8). Without it, only a return's status can say it is an exchange.
   */
  readonly exchangeOrders?: { getOrderByNumber(orderNumber: string): Promise<Ap21Order | undefined> };
  readonly now?: () => number;
}

/** Reads, then conditional writes: a few rounds absorb writers racing on the same order. */
const MAX_ROUNDS = 4;

const SOURCE_KIND: Record<Exclude<Ap21RefundState['kind'], 'payments_not_visible'>, RefundSourceKind> = {
  not_refunded: 'ap21_return',
  refunded_via_refundid: 'ap21_refundid',
  refunded_in_ap21: 'ap21_refunded',
};

/**
 * The states of a card reversal a read of Ap21 showing its return settled elsewhere acts on
 * (docs/design.md §2.3), and what each reason adds: not sent yet, in flight, or paid.
 */
const CARD_REVERSAL_STAGES: Partial<Record<Refund['state'], string>> = {
  reversal_pending: 'before its card reversal was sent: not sent, so not paid twice; release it (or reroute if Ap21 is wrong)',
  reversal_submitted: 'while its card reversal was in flight: not submitted again; check the provider, then release it',
  paid: 'after its card reversal paid: the customer was paid twice; recover the money',
  // Often a reversal sent whose answer never came: its money may have moved, and a provider's proof may still book it.
  manual_review: 'while it was in manual review: no card reversal unless Ap21 is wrong; check the provider, then release it',
};

/**
 * The one conditional write that marks each of those states: to review; the mark only (in flight, or paid);
 * in review already, the mark and the reason (`external_ref_recorded`: bookkeeping from review, schedule untouched).
 */
const CARD_REVERSAL_MARKS: Partial<Record<Refund['state'], RefundEvent>> = {
  reversal_pending: 'review_required',
  reversal_submitted: 'settled_elsewhere_noted',
  paid: 'paid_twice_noted',
  manual_review: 'external_ref_recorded',
};

/** What the intake knows of a return's exchange when it prices it: Ap21's answer, or that Ap21 reversed it. */
type ExchangeView = ExchangeOrderLookup | 'reversed';

const exchangeFactsOf = (ret: Ap21Return): ReturnExchangeFacts => ({
  ...(ret.status !== undefined && { status: ret.status }),
  ...(ret.returnAuthorisationNumber !== undefined && { authorisationNumber: ret.returnAuthorisationNumber }),
});

/** A return's units, their value, and which of its lines Ap21 shows not returnable now. */
interface ReturnedClaim {
  readonly nowNotReturnable: ReadonlyMap<string, string>;
  readonly lines: Record<string, number>;
  readonly amount: Money;
}

/** A refund and the words the timeline gives its creation. */
interface RefundPlan {
  readonly spec: NewRefund;
  readonly exchangeNote?: string;
}

function returnedUnitsBySku(ret: Ap21Return): Record<string, number> {
  const units: Record<string, number> = {};
  for (const line of ret.lines) units[line.skuId] = (units[line.skuId] ?? 0) - line.quantity;
  return units;
}

/**
 * Why a plain Ap21 return of units Refundid is refunding must not be paid (docs/design.md §2.3, §2.7): an
 * RMA reserved with us (`refunding`) whose payout has not come (`refundid_pending`) holds units of a SKU
 * the return takes, so the return may be the same goods lodged in Ap21 before Refundid's payment shows
 * there, its claim taking another unit of that SKU. No money on a guess: an operator decides.
 */
function refundidStillRefunding(stored: StoredOrder, claim: Readonly<Record<string, number>>, ret: Ap21Return): string[] {
  const skuOf = (lineId: string) => own(stored.lines, lineId)?.sku;
  const returned = new Set(Object.keys(claim).map(skuOf));
  return Object.values(stored.refunds).flatMap((refund) => {
    if (refund.source.kind !== 'refundid_rma' || refund.state !== 'refundid_pending') return [];
    const skus = [...new Set(Object.keys(refund.lines).map(skuOf))].filter((sku) => sku !== undefined && returned.has(sku));
    if (skus.length === 0) return [];
    return [
      `Refundid RMA ${refund.source.ref} (refund ${refund.id}) is refunding SKU ${skus.join(', ')} and Refundid has not paid it yet: Ap21 return ${ret.orderNumber} (${ret.returnId}) may be the same goods lodged before Refundid's payment shows on it: release it once Refundid has paid them, or reroute it to the card if the customer returned other units`,
    ];
  });
}

/**
 * Turns one Ap21 return into exactly one refund (docs/design.md §2.3–2.4), whoever asks and however often:
 * the poller, the push endpoint, a retry after a crash. The refund id derives from the return id,
 * so a second ingestion finds the first. A return Ap21 shows as already refunded (by Refundid, or
 * by Ap21 itself to the original payment) is recorded as paid and never dispatched; one that is
 * Refundid's refund of an RMA we already hold is tied to that RMA instead of becoming a second refund.
 */
export class ReturnIntake {
  private readonly now: () => number;

  constructor(private readonly deps: ReturnIntakeDeps) {
    this.now = deps.now ?? Date.now;
  }

  async ingest(order: Ap21Order, ret: Ap21Return): Promise<IngestOutcome> {
    const refundState = refundStateOf(ret);
    if (refundState.kind === 'payments_not_visible') {
      throw new ReturnPaymentsNotVisibleError(`return ${ret.returnId} was read without its payments: set AP21_API_VERSION to 4.0 or later`);
    }
    if (ret.personId !== order.personId || (ret.origOrderNumber !== undefined && ret.origOrderNumber !== order.orderNumber)) {
      throw new InvalidRefundError(`Ap21 return ${ret.returnId} does not belong to order ${order.orderNumber}`);
    }
    const orderId = ledgerOrderId(order.orderId);
    const unitsBySku = returnedUnitsBySku(ret);
    const exchanges = new ExchangeLookups(this.deps, order, ret, refundState.kind === 'not_refunded');
    let carried: StoredOrder | undefined;
    if (refundState.kind === 'not_refunded' && mayBeExchange(exchangeFactsOf(ret), this.deps.ledger.exchanges)) {
      // A return read again must not ask Ap21 again: the ledger says first whether it was booked.
      carried = await this.deps.store.getOrder(orderId);
    }
    if (!carried) {
      const first = await this.openWithRefund(order, ret, refundState, unitsBySku, await exchanges.forNewReturn());
      if (first.kind === 'created') return first;
      carried = first.existing;
    }
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const stored: StoredOrder = carried ?? (await this.ledgerOf(order, orderId));
      carried = undefined;
      const bookedTwice = await this.withdrawIfBookedTwice(orderId, stored, ret, refundState, unitsBySku);
      if (bookedTwice === 'changed') continue;
      if (bookedTwice) return { kind: 'linked', orderId, refundId: bookedTwice.id };
      const ofReturn = Object.values(stored.refunds).filter(
        (refund) => refund.id === returnRefundId(ret.returnId) || refund.refs[AP21_RETURN_REF] === ret.returnId,
      );
      const settledByExchange = ofReturn.find((refund) => refund.channel === 'exchange' && refund.state === 'paid');
      const known = ofReturn.find((refund) => refund.channel !== 'exchange');
      if (known) {
        if (known.settledBy !== undefined && known.source.kind === 'ap21_return' && !(await exchanges.stillShown())) {
          throw new InvalidRefundError(
            `Ap21 reversed the exchange of return ${ret.orderNumber} (${ret.returnId}) after refund ${known.id} refunded its difference: the rest of its value is owed, an operator refunds it`,
          );
        }
        const notOwed =
          refundState.kind !== 'not_refunded' && this.awaitsReceipt(known)
            ? `Ap21 now shows return ${ret.orderNumber} (${ret.returnId}) already refunded (${refundState.kind === 'refunded_via_refundid' ? 'by Refundid' : 'by Ap21'}) while this refund waited for its receipt: not released, so not paid twice; release it`
            : (await this.exchangedWhileWaiting(known, ret, refundState.kind === 'not_refunded', exchanges))
              ? `Ap21 now shows return ${ret.orderNumber} (${ret.returnId}) settled by exchange while this refund waited for its receipt: no money sent; release it (or reroute if no exchange was made)`
              : undefined;
        if (notOwed !== undefined) {
          if (await this.holdForOperator(orderId, known, notOwed)) continue;
          return { kind: 'already_ingested', orderId, refundId: known.id };
        }
        const offerNotOwed = await this.liveOfferNotOwed(known, ret, refundState, exchanges);
        if (offerNotOwed !== undefined) {
          if (await this.cancelLiveOffer(orderId, known, offerNotOwed)) continue;
          return { kind: 'already_ingested', orderId, refundId: known.id };
        }
        const cardNotOwed = await this.cardReversalNotOwed(known, ret, refundState, exchanges);
        if (cardNotOwed !== undefined) {
          if (await this.markCardReversal(orderId, known, cardNotOwed)) continue;
          return { kind: 'already_ingested', orderId, refundId: known.id };
        }
        const provider = own(stored.payments, known.paymentId)?.provider ?? 'other';
        const settledOtherwise = () => this.settledOtherwise(known, ret, refundState.kind === 'not_refunded', exchanges);
        const receipt = await this.releaseOnReceipt(orderId, known, ret, provider, settledOtherwise);
        if (receipt === 'changed') continue;
        return receipt === 'released' ? { kind: 'received', orderId, refundId: known.id } : { kind: 'already_ingested', orderId, refundId: known.id };
      }
      if (settledByExchange) {
        if (await exchanges.stillShown()) return { kind: 'already_ingested', orderId, refundId: settledByExchange.id };
        if (ret.returnAuthorisationNumber === undefined) {
          // No exchange order to ask about: a status that moved on (received, completed) is no proof of a reversal.
          throw new InvalidRefundError(
            `Ap21 no longer shows return ${ret.orderNumber} (${ret.returnId}) exchanged (status ${ret.status ?? 'not shown'}) and names no exchange order to check: reversed or only received? No money on a guess; an operator decides`,
          );
        }
        await this.reverseExchange(orderId, settledByExchange, ret);
        continue;
      }
      const reversed = ofReturn.some((refund) => refund.channel === 'exchange' && refund.state === 'released');

      if (refundState.kind === 'refunded_via_refundid') {
        const references = refundState.payments.flatMap((payment) => [payment.stan, payment.reference].filter((value): value is string => value !== undefined));
        const rma = matchingRefundidRma(stored, unitsBySku, references, AP21_RETURN_REF);
        if (rma) {
          if (await this.link(orderId, rma, ret)) return { kind: 'linked', orderId, refundId: rma.id };
          continue;
        }
      }
      const plan = this.awaitingReceipt(
        this.refundFor(stored, order, ret, refundState, unitsBySku, reversed ? 'reversed' : await exchanges.forNewReturn()),
        stored,
        ret,
      );
      if (!plan) {
        await this.deps.store.recordInbound(
          orderId,
          { source: 'ap21', key: `return-${ret.returnId}-no-value`, raw: JSON.stringify(ret), note: 'returned units are worth nothing: no refund' },
          this.iso(),
        );
        return { kind: 'nothing_to_refund', orderId };
      }
      try {
        // Ap21's return is not a message we received: it is read again from Ap21 by the id the note names.
        const { refund, created } = await this.deps.store.createRefund(orderId, plan.spec, this.iso(), {
          actor: 'ap21',
          note: this.note(ret, refundState, plan),
        });
        if (!created) return { kind: 'already_ingested', orderId, refundId: refund.id };
        logger.info('refund created from an Ap21 return', { order_id: orderId, refund_id: refund.id, state: refund.state, channel: refund.channel });
        if (refundState.kind === 'refunded_via_refundid') {
          // A push of its RMA may have booked the same payout since our read, blind to this record: read again.
          const bookedTwice = await this.withdrawIfBookedTwice(orderId, await this.ledgerOf(order, orderId), ret, refundState, unitsBySku);
          if (bookedTwice === 'changed') continue;
          if (bookedTwice) return { kind: 'linked', orderId, refundId: bookedTwice.id };
        }
        this.logHeld(orderId, refund);
        if (WORK_STATES.has(refund.state)) await this.ring(orderId);
        return { kind: 'created', orderId, refund };
      } catch (error) {
        // Another writer took units or created this refund between our read and our write: look again.
        const raced = error instanceof UnitsUnavailableError || error instanceof RefundConflictError;
        if (!raced || round === MAX_ROUNDS) throw error;
      }
    }
    throw new StoreContentionError(`order ${orderId} kept changing while return ${ret.returnId} was ingested`);
  }

  /** The rules ledgers are opened by (returnability, tenders), for answers that must follow them. */
  get ledgerSettings(): Ap21LedgerSettings {
    return this.deps.ledger;
  }

  /**
   * The order's ledger, opened from Ap21's order the first time the order is seen (the poller
   * opens every order it reads, so Refundid's order fetch finds it before any return exists).
   * An order with nothing sold on it (a negative order) cannot be opened: InvalidRefundError.
   */
  async openLedger(order: Ap21Order): Promise<StoredOrder> {
    return this.ledgerOf(order, ledgerOrderId(order.orderId));
  }

  /**
   * The common case in one write: the order is not open yet, so it is opened with the return's
   * refund in it (docs/design.md §2.1). Otherwise nothing is written, and the order as it is comes
   * back when DynamoDB returns it with the refusal, sparing the read that follows.
   */
  private async openWithRefund(
    order: Ap21Order,
    ret: Ap21Return,
    refundState: Exclude<Ap21RefundState, { kind: 'payments_not_visible' }>,
    unitsBySku: Record<string, number>,
    exchange: ExchangeView,
  ): Promise<{ kind: 'created'; orderId: string; refund: Refund } | { kind: 'open'; existing?: StoredOrder }> {
    const opened = openOrder(ledgerOrderFrom(order, this.deps.ledger), this.iso());
    const plan = this.awaitingReceipt(this.refundFor({ ...opened, timeline: [] }, order, ret, refundState, unitsBySku, exchange), opened, ret);
    // Nothing to refund, or a refund Refundid made (which may belong to an RMA): the general path decides.
    if (!plan || refundState.kind === 'refunded_via_refundid') return { kind: 'open' };
    const outcome = await this.deps.store.openOrderWithRefund(opened, plan.spec, this.iso(), { actor: 'ap21', note: this.note(ret, refundState, plan) });
    if (!outcome.opened) return { kind: 'open', ...(outcome.existing && { existing: outcome.existing }) };
    logger.info('order opened with a refund from an Ap21 return', { order_id: opened.orderId, refund_id: outcome.refund.id, state: outcome.refund.state });
    this.logHeld(opened.orderId, outcome.refund);
    if (WORK_STATES.has(outcome.refund.state)) await this.ring(opened.orderId);
    return { kind: 'created', orderId: opened.orderId, refund: outcome.refund };
  }

  private async ledgerOf(order: Ap21Order, orderId: string): Promise<StoredOrder> {
    const existing = await this.deps.store.getOrder(orderId);
    if (existing) return existing;
    const fresh = openOrder(ledgerOrderFrom(order, this.deps.ledger), this.iso());
    // Opened by this write: it is as written, no need to read it back.
    if ((await this.deps.store.putOrder(fresh)).created) return { ...fresh, timeline: [] };
    const opened = await this.deps.store.getOrder(orderId);
    if (!opened) throw new Error(`order ${orderId} was not found right after it was opened`);
    return opened;
  }

  /**
   * The refund a return asks for (docs/design.md §2.7), or undefined when the units are worth
   * nothing. A return settled by an exchange moves no money, or only the difference the stage
   * refunds (docs/design.md §2.8): the plan carries the words the timeline gives that decision.
   */
  private refundFor(
    stored: StoredOrder,
    order: Ap21Order,
    ret: Ap21Return,
    refundState: Exclude<Ap21RefundState, { kind: 'payments_not_visible' }>,
    unitsBySku: Record<string, number>,
    exchange: ExchangeView,
  ): RefundPlan | undefined {
    const claim = this.claimOf(stored, order, ret, refundState, unitsBySku);
    const exchanged =
      refundState.kind === 'not_refunded' && exchange !== 'reversed'
        ? decideExchange(exchangeFactsOf(ret), exchange, claim.amount.minor, this.deps.ledger.exchanges)
        : { kind: 'not_exchange' as const };
    // A return whose exchange Ap21 reversed keeps its first id on the ended exchange record.
    const refundId = own(stored.refunds, returnRefundId(ret.returnId)) ? afterExchangeRefundId(ret.returnId) : returnRefundId(ret.returnId);
    const refs: Record<string, string> = exchange !== 'reversed' && exchange?.found ? { [AP21_EXCHANGE_ORDER_REF]: exchange.orderNumber } : {};
    if (exchanged.kind === 'settled') {
      const paymentId = paymentForReturn(stored, 0, this.deps.ledger.tenders)?.paymentId ?? Object.keys(stored.payments)[0];
      if (paymentId === undefined) throw new InvalidRefundError(`order ${stored.orderId} has no payment to book exchange ${exchanged.settledBy} against`);
      const spec: NewRefund = {
        refundId,
        lines: claim.lines,
        paymentId,
        amount: { minor: 0, currency: stored.currency },
        source: { kind: 'ap21_exchange', ref: ret.returnId },
        refs: { [AP21_RETURN_REF]: ret.returnId, ap21ReturnNumber: ret.orderNumber, ...refs },
        route: 'exchange',
        alreadyPaid: true,
        settledBy: exchanged.settledBy,
      };
      return { spec, exchangeNote: exchanged.note };
    }
    const difference = exchanged.kind === 'difference' ? { differenceMinor: exchanged.differenceMinor, settledBy: exchanged.settledBy } : {};
    const spec = this.moneyRefundFor(stored, ret, refundState, claim, { refundId, refs, ...difference });
    const exchangeNote =
      exchanged.kind === 'difference'
        ? exchanged.note
        : exchange === 'reversed'
          ? 'Ap21 reversed its exchange: refunded as a plain return'
          : exchange?.found === false
            ? `not an exchange (no order ${ret.returnAuthorisationNumber ?? ''} in Ap21)`
            : undefined;
    return spec && { spec, ...(exchangeNote !== undefined && { exchangeNote }) };
  }

  /** The units a return takes (returnable lines first) and their value: the money that went back, or their share of what was paid. */
  private claimOf(
    stored: StoredOrder,
    order: Ap21Order,
    ret: Ap21Return,
    refundState: Exclude<Ap21RefundState, { kind: 'payments_not_visible' }>,
    unitsBySku: Record<string, number>,
  ): ReturnedClaim {
    const nowNotReturnable = new Map(
      order.lines.flatMap((line) => {
        const reason = lineReturnFacts(line, this.deps.ledger).nonReturnable;
        return reason === undefined ? [] : [[line.lineId, reason] as const];
      }),
    );
    const lines = allocateReturnedUnits(stored, unitsBySku, new Set(nowNotReturnable.keys()));
    // Money that already went back is booked as it went; otherwise the units' share of what was paid.
    const amount: Money = refundState.kind === 'not_refunded' ? proportionalValue(stored, lines) : refundState.refunded;
    if (amount.currency !== stored.currency) throw new InvalidRefundError(`return ${ret.returnId} is in ${amount.currency}, its order in ${stored.currency}`);
    return { nowNotReturnable, lines, amount };
  }

  /**
   * A refund in money, or undefined when there is none to move. Units that are not returnable (as
   * the ledger recorded them or as Ap21 shows them now) and money the tender rule gives to an
   * operator make a refund held in manual review with the reasons (docs/design.md §2.7).
   */
  private moneyRefundFor(
    stored: StoredOrder,
    ret: Ap21Return,
    refundState: Exclude<Ap21RefundState, { kind: 'payments_not_visible' }>,
    { nowNotReturnable, lines, amount: value }: ReturnedClaim,
    exchange: { readonly refundId: string; readonly refs: Readonly<Record<string, string>>; readonly differenceMinor?: number; readonly settledBy?: string },
  ): NewRefund | undefined {
    const amount: Money = exchange.differenceMinor === undefined ? value : { minor: exchange.differenceMinor, currency: value.currency };
    if (amount.minor === 0) return undefined;
    const refundedStan = refundState.kind === 'not_refunded' ? undefined : refundState.payments.find((payment) => payment.stan !== undefined)?.stan;
    const refundedReference =
      refundState.kind === 'refunded_via_refundid' ? refundState.payments.find((payment) => payment.reference !== undefined)?.reference : undefined;
    // Money that already moved is booked against the payment it went to; new money follows the tender rule.
    const decision: TenderDecision | undefined =
      refundState.kind === 'not_refunded'
        ? paymentForReturn(stored, amount.minor, this.deps.ledger.tenders)
        : this.paidPayment(stored, amount.minor, refundState, refundedStan);
    if (!decision) throw new UnitsUnavailableError(`no payment of order ${stored.orderId} has ${formatDecimal(amount)} ${amount.currency} left to refund`);
    const { paymentId } = decision;
    const refs = {
      [AP21_RETURN_REF]: ret.returnId,
      ap21ReturnNumber: ret.orderNumber,
      ...exchange.refs,
      ...(refundedStan !== undefined && { ap21RefundStan: refundedStan }),
      // Which of Stan and Reference carries Refundid's refundid_id is UNCONFIRMED (docs/design.md §2.3): a push names its record by either.
      ...(refundedReference !== undefined && { ap21RefundReference: refundedReference }),
    };
    const source = { kind: SOURCE_KIND[refundState.kind], ref: ret.returnId };
    const base = {
      refundId: exchange.refundId,
      lines,
      paymentId,
      amount,
      source,
      refs,
      ...(exchange.settledBy !== undefined && { settledBy: exchange.settledBy }),
    };
    if (refundState.kind === 'refunded_via_refundid') return { ...base, route: 'refundid', alreadyPaid: true };
    if (refundState.kind === 'refunded_in_ap21') return { ...base, route: 'reversal', alreadyPaid: true };
    const holds = [
      ...Object.keys(lines).flatMap((lineId) => {
        const reason = own(stored.lines, lineId)?.nonReturnable ?? nowNotReturnable.get(lineId);
        return reason === undefined ? [] : [`line ${lineId} is not returnable: ${reason}`];
      }),
      ...(decision.hold === undefined ? [] : [decision.hold]),
      ...refundidStillRefunding(stored, lines, ret),
    ];
    if (holds.length > 0) return { ...base, route: 'reversal', held: holds.join('; ') };
    const { policy, apaceEnabled, offerDays } = this.deps.routing;
    const route = chooseRoute(stored.payments[paymentId]!, policy, apaceEnabled);
    if (route === 'reversal') return { ...base, route };
    return { ...base, route, offerExpiresAt: offerExpiry({ offerDays }, new Date(this.now())) };
  }

  /**
   * Ap21 no longer shows the exchange that settled a return (its exchange order deleted, the return a
   * plain return again): the exchange record ends and its units become available for the plain
   * refund the next round creates (docs/design.md §2.8).
   */
  private async reverseExchange(orderId: string, record: Refund, ret: Ap21Return): Promise<void> {
    const note = `Ap21 return ${ret.orderNumber} (${ret.returnId}): ${record.settledBy ?? 'its exchange'} is reversed in Ap21 (status ${ret.status ?? 'not shown'}); refunded as a plain return`;
    const outcome = await this.deps.store.applyEvent(
      orderId,
      record.id,
      'exchange_reversed',
      { now: this.iso(), claimWindowMs: 0 },
      { actor: 'ap21', note },
      record,
    );
    if (outcome.applied) logger.info('Ap21 reversed an exchange; the return is refunded as a plain one', { order_id: orderId, refund_id: record.id });
  }

  /**
   * The stage's receipt rule (docs/design.md §2.9): a refund whose channel pays only once Ap21 shows
   * the return received, and whose return Ap21 does not show received yet, waits for it, for at
   * most the stage's wait. Money that already moved, refunds held for an operator and exchanges
   * are as they were; a return received before its refund is created pays at once.
   */
  private awaitingReceipt(plan: RefundPlan | undefined, order: Pick<Order, 'payments'>, ret: Ap21Return): RefundPlan | undefined {
    const rules = this.deps.ledger.receipt;
    const spec = plan?.spec;
    if (!plan || !spec || !rules || spec.alreadyPaid || spec.held !== undefined || (spec.route !== 'apace' && spec.route !== 'reversal')) return plan;
    const provider = own(order.payments, spec.paymentId)?.provider ?? 'other';
    if (returnReceived(ret.status, rules)) {
      // The goods are back: an Apace refund that later falls back to card reversal pays at once.
      if (spec.route !== 'apace' || !fallbackHeldUntilReceipt(provider, rules)) return plan;
      return { ...plan, spec: { ...spec, refs: { ...spec.refs, [RETURN_RECEIVED_REF]: this.iso() } } };
    }
    if (!waitsForReceipt(spec.route, provider, rules)) return plan;
    return { ...plan, spec: { ...spec, awaitReceiptUntil: new Date(this.now() + rules.waitMs).toISOString() } };
  }

  /**
   * A waiting refund whose money Ap21 shows is no longer owed goes to manual review with the reason
   * (one conditional write), where an operator can release it at once. True: the refund moved under
   * us, look again.
   */
  private async holdForOperator(orderId: string, known: Refund, reason: string): Promise<boolean> {
    const outcome = await this.deps.store.applyEvent(
      orderId,
      known.id,
      'receipt_release_refused',
      { now: this.iso(), claimWindowMs: 0, reason },
      { actor: 'ap21', note: reason },
      known,
    );
    if (!outcome.applied) return outcome.why === 'superseded';
    logger.error('refund needs manual review', { order_id: orderId, refund_id: known.id, reason });
    emitMetric('RefundsInManualReview', 1);
    return false;
  }

  /**
   * Whether Ap21 showing this refund's return received changes anything (docs/design.md §2.9): the
   * refund waits for it, or it came through Apace and a fallback to its card would wait for it.
   * A push of a return already processed is read from Ap21 again only then.
   */
  receiptMatters(refund: Refund, order: Pick<Order, 'payments'>): boolean {
    return this.awaitsReceipt(refund) || this.receiptWouldBeNoted(refund, own(order.payments, refund.paymentId)?.provider ?? 'other');
  }

  /** A refund from an Ap21 return through Apace, not settled elsewhere, whose fallback to this card the stage holds until a receipt not yet seen. */
  private receiptWouldBeNoted(known: Refund, provider: PaymentProvider): boolean {
    const rules = this.deps.ledger.receipt;
    if (!rules || known.source.kind !== 'ap21_return' || known.offerExpiresAt === null || known.refs[RETURN_RECEIVED_REF] !== undefined) return false;
    // Paid through another channel: no fallback can follow.
    if (known.state === 'paid' && known.channel !== 'apace') return false;
    return ruleFor('return_received_noted').from.includes(known.state) && fallbackHeldUntilReceipt(provider, rules);
  }

  /**
   * Why the money of a refund with a live Apace offer (`offer_pending`, `offered`: the customer has
   * not claimed) is no longer owed, when Ap21 now shows its return already refunded (by Ap21 or
   * Refundid) or exchanged (its status, or the exchange order its number names: one lookup per read
   * while the offer is live, docs/design.md §2.8); also when its offer is already being cancelled
   * (`offer_cancelling`), which would otherwise go on to the card. Undefined: still owed, or already marked.
   */
  private async liveOfferNotOwed(known: Refund, ret: Ap21Return, refundState: Ap21RefundState, exchanges: ExchangeLookups): Promise<string | undefined> {
    if (known.channel !== 'apace' || known.source.kind !== 'ap21_return' || known.refs[SETTLED_ELSEWHERE_REF] !== undefined) return undefined;
    if (!ruleFor('offer_cancel_started').from.includes(known.state) && !ruleFor('settled_elsewhere_noted').from.includes(known.state)) return undefined;
    const shown = `Ap21 now shows return ${ret.orderNumber} (${ret.returnId})`;
    const after = 'while its Apace offer was live: the offer is cancelled first and no money sent on any channel';
    if (refundState.kind !== 'not_refunded') {
      return `${shown} already refunded (${refundState.kind === 'refunded_via_refundid' ? 'by Refundid' : 'by Ap21'}) ${after}; release it`;
    }
    const rules = this.deps.ledger.exchanges;
    // A refund of only an exchange's difference was decided with the exchange known.
    if (known.settledBy !== undefined || !mayBeExchange(exchangeFactsOf(ret), rules)) return undefined;
    if (!(await exchanges.stillShown())) return undefined;
    return `${shown} settled by exchange ${after}; release it (or redrive if no exchange was made)`;
  }

  /**
   * Moves a refund whose live offer Ap21 shows is no longer owed onto the cancel-first path (one
   * conditional write, docs/design.md §2.3): from now on Apace's verification answers
   * `allow_refund: false`, and the dispatcher cancels the offer and hands the refund to an operator
   * (never to the card). True: the refund moved under us, look again.
   */
  private async cancelLiveOffer(orderId: string, known: Refund, reason: string): Promise<boolean> {
    // No claim window: this path never sends money elsewhere, so a payout Apace approved just before is booked as Apace's.
    const now = this.iso();
    const refs = { [SETTLED_ELSEWHERE_REF]: reason, [SETTLED_ELSEWHERE_AT_REF]: now };
    // A cancel already in flight (its lease and schedule stand) only takes the mark; one conditional write either way,
    // so a dispatcher that claimed the refund before it loses its next write and reads the mark on its retry.
    const cancelling = known.state === 'offer_cancelling';
    const event = cancelling ? 'settled_elsewhere_noted' : 'offer_cancel_started';
    const ctx = cancelling ? { now, claimWindowMs: 0, refs } : { now, claimWindowMs: 0, reason, refs };
    const outcome = await this.deps.store.applyEvent(orderId, known.id, event, ctx, { actor: 'ap21', note: reason }, known);
    if (!outcome.applied) return outcome.why === 'superseded';
    logger.warn('Ap21 shows the return settled elsewhere: cancelling the live Apace offer', { order_id: orderId, refund_id: known.id, reason });
    await this.ring(orderId);
    return false;
  }

  /**
   * Why the card reversal of a refund from an Ap21 return is no longer owed, when Ap21 now shows its
   * return already refunded (by Ap21 or Refundid: refund-relay writes no refund to Ap21, so someone
   * else paid) or exchanged (the facts `settledOtherwise` reads: its status, or the exchange order its
   * number names, one lookup per read; once paid, its status alone), while the reversal waits to be
   * sent, is in flight or is paid (docs/design.md §2.3, §2.8). Undefined: still owed, or already marked (once; an operator's redrive stands).
   */
  private async cardReversalNotOwed(known: Refund, ret: Ap21Return, refundState: Ap21RefundState, exchanges: ExchangeLookups): Promise<string | undefined> {
    if (known.channel !== 'reversal' || known.source.kind !== 'ap21_return' || known.refs[SETTLED_ELSEWHERE_REF] !== undefined) return undefined;
    const stage = CARD_REVERSAL_STAGES[known.state];
    if (stage === undefined) return undefined;
    const refunded = refundState.kind !== 'not_refunded';
    // Paid already, the money cannot be held back: its status alone says it, sparing an Ap21 call on every later read.
    const exchanged = () =>
      known.state === 'paid'
        ? known.settledBy === undefined && statusSaysExchange(exchangeFactsOf(ret).status, this.deps.ledger.exchanges)
        : this.settledOtherwise(known, ret, true, exchanges);
    if (!refunded && !(await exchanged())) return undefined;
    const how = refunded ? `already refunded (${refundState.kind === 'refunded_via_refundid' ? 'by Refundid' : 'by Ap21'})` : 'settled by exchange';
    return `Ap21 now shows return ${ret.orderNumber} (${ret.returnId}) ${how} ${stage}`;
  }

  /**
   * One conditional write per card-reversal stage (docs/design.md §2.3), each marking
   * `refs.settledElsewhere` once: not sent yet → manual review (no money moved); submitted → the
   * mark only (its lease and schedule stand; the dispatcher never submits it again); paid → the mark
   * only, and an alert (`RefundsPaidTwice`): the customer was paid twice; in review already → the
   * mark and the reason (the operator's next step changes; a provider's later proof of payment then
   * raises `RefundsPaidTwice`). True: the refund moved under us, look again.
   */
  private async markCardReversal(orderId: string, known: Refund, reason: string): Promise<boolean> {
    const now = this.iso();
    const refs = { [SETTLED_ELSEWHERE_REF]: reason, [SETTLED_ELSEWHERE_AT_REF]: now };
    const event = CARD_REVERSAL_MARKS[known.state];
    if (event === undefined) return false;
    // In review already: the reason is replaced (cut at 200 characters, so the mark's reason first), the earlier one kept after it.
    const ctx =
      event === 'review_required'
        ? { now, claimWindowMs: 0, reason, refs }
        : event === 'external_ref_recorded'
          ? { now, claimWindowMs: 0, reason: `${reason} (in review before: ${known.reason ?? 'no reason given'})`, refs }
          : { now, claimWindowMs: 0, refs };
    const outcome = await this.deps.store.applyEvent(orderId, known.id, event, ctx, { actor: 'ap21', note: reason }, known);
    if (!outcome.applied) return outcome.why === 'superseded';
    const fields = { order_id: orderId, refund_id: known.id, reason };
    if (event === 'review_required' || event === 'external_ref_recorded') {
      logger.error('refund needs manual review', fields);
      emitMetric('RefundsInManualReview', 1);
    } else if (event === 'settled_elsewhere_noted') {
      logger.warn('Ap21 shows the return settled elsewhere while its card reversal is in flight: not submitted again', fields);
      emitMetric('ReversalsInFlightSettledElsewhere', 1);
    } else {
      reportPaidTwice(orderId, known.id, reason);
    }
    return false;
  }

  /** Whether a refund still waits for its return's receipt (and so has sent no money yet, docs/design.md §2.9). */
  private awaitsReceipt(refund: Refund): boolean {
    return guardHolds(refund, 'receipt_awaited', { now: this.iso(), claimWindowMs: 0 });
  }

  /**
   * A plain refund that has moved no money yet (it waits for the receipt) whose return Ap21 now
   * shows exchanged (docs/design.md §2.8–2.9): releasing it would pay for units the customer swapped.
   * The status alone costs nothing; the exchange order is asked about only when the receipt would
   * release the money now, once.
   */
  private async exchangedWhileWaiting(known: Refund, ret: Ap21Return, moneyToDecide: boolean, exchanges: ExchangeLookups): Promise<boolean> {
    const rules = this.deps.ledger.exchanges;
    const facts = exchangeFactsOf(ret);
    if (!moneyToDecide || known.settledBy !== undefined || known.source.kind !== 'ap21_return' || !mayBeExchange(facts, rules)) return false;
    if (!this.awaitsReceipt(known)) return false;
    if (statusSaysExchange(facts.status, rules)) return true;
    const receipt = this.deps.ledger.receipt;
    return receipt !== undefined && returnReceived(ret.status, receipt) && (await exchanges.stillShown());
  }

  /**
   * Whether Ap21 shows the money of a refund that has not waited yet no longer owed: the return
   * already refunded (by Ap21 or Refundid), or exchanged (its status, or the exchange order its
   * number names: one lookup, docs/design.md §2.8). Asked only when a receipt would be noted.
   */
  private async settledOtherwise(known: Refund, ret: Ap21Return, moneyToDecide: boolean, exchanges: ExchangeLookups): Promise<boolean> {
    if (!moneyToDecide) return true;
    const rules = this.deps.ledger.exchanges;
    const facts = exchangeFactsOf(ret);
    if (known.settledBy !== undefined || !mayBeExchange(facts, rules)) return false;
    return statusSaysExchange(facts.status, rules) || (await exchanges.stillShown());
  }

  /**
   * A known return read again: when Ap21 now shows it received and its refund waits for that, one
   * conditional write releases the refund to its channel (an Apace offer is requested only now, its
   * expiry counted from now). Of two readers at once (the poller and a push) one writes; the other
   * finds it released. 'changed': the refund moved under us, look again. A refund on Apace that
   * does not wait has the receipt noted instead, when a fallback to card reversal would wait for it.
   */
  private async releaseOnReceipt(
    orderId: string,
    known: Refund,
    ret: Ap21Return,
    provider: PaymentProvider,
    settledOtherwise: () => Promise<boolean>,
  ): Promise<'released' | 'unchanged' | 'changed'> {
    const rules = this.deps.ledger.receipt;
    if (!rules || !returnReceived(ret.status, rules)) return 'unchanged';
    if (!this.awaitsReceipt(known)) return this.noteReceipt(orderId, known, ret, provider, settledOtherwise);
    const event = known.channel === 'apace' ? 'return_received_for_offer' : 'return_received';
    const ctx = {
      now: this.iso(),
      claimWindowMs: 0,
      ...(known.channel === 'apace' && { offerExpiresAt: offerExpiry({ offerDays: this.deps.routing.offerDays }, new Date(this.now())) }),
      // A refund that left Apace and waited: its card reversal is not held again.
      ...(known.offerExpiresAt !== null && { refs: { [RETURN_RECEIVED_REF]: this.iso() } }),
    };
    if (!planTransition(known, event, ctx).ok) return 'unchanged';
    const note = `Ap21 shows return ${ret.orderNumber} (${ret.returnId}) received (status ${ret.status ?? ''})`;
    const outcome = await this.deps.store.applyEvent(orderId, known.id, event, ctx, { actor: 'ap21', note }, known);
    if (!outcome.applied) return outcome.why === 'superseded' ? 'changed' : 'unchanged';
    logger.info('return received: refund released to its channel', { order_id: orderId, refund_id: known.id, channel: known.channel });
    await this.ring(orderId);
    return 'released';
  }

  /**
   * Records that Ap21 shows the return of a refund paid through Apace received, once, where the
   * stage would otherwise hold its fallback to card reversal until receipt (docs/design.md §2.9):
   * the fallback then pays at once. One conditional write; against a fallback that moved the refund
   * to wait meanwhile it loses ('changed'), and the next round releases the waiting refund instead.
   */
  private async noteReceipt(
    orderId: string,
    known: Refund,
    ret: Ap21Return,
    provider: PaymentProvider,
    settledOtherwise: () => Promise<boolean>,
  ): Promise<'unchanged' | 'changed'> {
    if (!this.receiptWouldBeNoted(known, provider)) return 'unchanged';
    // A return Ap21 shows exchanged or already refunded is not noted: a fallback then waits, and its release refuses it.
    if (await settledOtherwise()) {
      logger.warn('Ap21 shows the return received but settled otherwise: receipt not noted', { order_id: orderId, refund_id: known.id });
      return 'unchanged';
    }
    const ctx = { now: this.iso(), claimWindowMs: 0, refs: { [RETURN_RECEIVED_REF]: this.iso() } };
    if (!planTransition(known, 'return_received_noted', ctx).ok) return 'unchanged';
    const note = `Ap21 shows return ${ret.orderNumber} (${ret.returnId}) received (status ${ret.status ?? ''}): a card reversal after Apace pays at once`;
    const outcome = await this.deps.store.applyEvent(orderId, known.id, 'return_received_noted', ctx, { actor: 'ap21', note }, known);
    if (!outcome.applied) return outcome.why === 'superseded' ? 'changed' : 'unchanged';
    // A fallback that lost to this write left the refund due for card reversal.
    await this.ring(orderId);
    return 'unchanged';
  }

  /**
   * One Refundid payout booked twice (docs/design.md §2.3): this return's record (paid via Refundid, no
   * RMA attached) and the refund of the RMA its payment names (Stan or Reference) or that is tied to it,
   * each written after the other side's read: a push and this read at once, or
   * a record left by a read that failed before this check. The RMA's refund is tied to the return
   * first (`link`, first wins; kept when tied already), then the record is withdrawn
   * (`refundid_record_withdrawn`: units and money back to available), each one conditional write the
   * push makes too, from its side: one booking remains whoever writes last. 'changed': look again.
   */
  private async withdrawIfBookedTwice(
    orderId: string,
    stored: StoredOrder,
    ret: Ap21Return,
    refundState: Exclude<Ap21RefundState, { kind: 'payments_not_visible' }>,
    unitsBySku: Record<string, number>,
  ): Promise<Refund | 'changed' | undefined> {
    if (refundState.kind !== 'refunded_via_refundid') return undefined;
    const refunds = Object.values(stored.refunds);
    const record = refunds.find(
      (refund) =>
        refund.source.kind === 'ap21_refundid' && refund.source.ref === ret.returnId && refund.state === 'paid' && refund.refs[REFUNDID_RMA_REF] === undefined,
    );
    if (!record) return undefined;
    const tied = refunds.find((refund) => refund.source.kind === 'refundid_rma' && refund.state === 'paid' && refund.refs[AP21_RETURN_REF] === ret.returnId);
    const references = refundState.payments.flatMap((payment) => [payment.stan, payment.reference].filter((value): value is string => value !== undefined));
    const matching = matchingRefundidRma(stored, unitsBySku, references, AP21_RETURN_REF);
    // Units alone are no proof: another RMA's payout for identical units looks the same, so only one the payment names is withdrawn for.
    const named = matching && [matching.source.ref, ...Object.values(matching.refs)].some((value) => references.includes(value));
    const rma = tied ?? (named ? matching : undefined);
    if (!rma) return undefined;
    if (!tied && !(await this.link(orderId, rma, ret))) return 'changed';
    const reason = `Refundid's payout of RMA ${rma.source.ref} is booked as refund ${rma.id}: this record of it withdrawn, not booked twice`;
    const outcome = await this.deps.store.applyEvent(
      orderId,
      record.id,
      'refundid_record_withdrawn',
      { now: this.iso(), claimWindowMs: 0, reason, refs: { [REFUNDID_RMA_REF]: rma.source.ref, [REFUNDID_BOOKED_AS_REF]: rma.id } },
      { actor: 'ap21', note: reason },
      record,
    );
    if (!outcome.applied) return 'changed';
    logger.warn('a Refundid payout was booked twice at once: the record from Ap21 is withdrawn', {
      order_id: orderId,
      refund_id: rma.id,
      withdrawn: record.id,
    });
    return rma;
  }

  /** Ties a Refundid RMA to the Ap21 return that shows Refundid paid it, settling it if still pending. */
  private async link(orderId: string, rma: Refund, ret: Ap21Return): Promise<boolean> {
    const event = rma.state === 'refundid_pending' ? 'refundid_refunded' : 'external_ref_recorded';
    const outcome = await this.deps.store.applyEvent(
      orderId,
      rma.id,
      event,
      { now: this.iso(), claimWindowMs: 0, refs: { [AP21_RETURN_REF]: ret.returnId } },
      { actor: 'ap21', note: `Ap21 return ${ret.orderNumber} (${ret.returnId}) shows this RMA refunded by Refundid`, raw: JSON.stringify(ret) },
      rma,
    );
    if (outcome.applied) logger.info('Ap21 return tied to its Refundid RMA', { order_id: orderId, refund_id: rma.id, event });
    return outcome.applied;
  }

  private note(ret: Ap21Return, refundState: Ap21RefundState, { spec, exchangeNote }: RefundPlan): string {
    const by = { refunded_via_refundid: ': already refunded by Refundid', refunded_in_ap21: ': already refunded by Ap21 to the original payment' };
    const exchanged = exchangeNote === undefined ? '' : `: ${exchangeNote}`;
    const held =
      spec.held !== undefined
        ? `; held for an operator: ${spec.held}`
        : spec.awaitReceiptUntil !== undefined
          ? `; paid once Ap21 shows it received (status now ${ret.status ?? 'not given'}; an operator is told after ${spec.awaitReceiptUntil})`
          : '';
    return `Ap21 return ${ret.orderNumber} (${ret.returnId})${refundState.kind in by ? by[refundState.kind as keyof typeof by] : ''}${exchanged}${held}`;
  }

  /** The payment money that already moved is booked against: the one Ap21 names, else one that can cover it. */
  private paidPayment(stored: StoredOrder, amountMinor: number, refundState: Ap21RefundState, refundedStan: string | undefined): TenderDecision | undefined {
    const paymentId = choosePayment(stored, amountMinor, refundState.kind === 'refunded_in_ap21' ? refundedStan : undefined);
    return paymentId === undefined ? undefined : { paymentId };
  }

  private logHeld(orderId: string, refund: Refund): void {
    if (refund.state !== 'manual_review') return;
    logger.error('refund needs manual review', { order_id: orderId, refund_id: refund.id, reason: refund.reason });
    emitMetric('RefundsInManualReview', 1);
  }

  private async ring(orderId: string): Promise<void> {
    try {
      await this.deps.doorbell?.ring([orderId]);
    } catch (error) {
      logger.warn('could not ring the dispatcher; the sweeper will find the refund', { order_id: orderId, error });
    }
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

/**
 * Ap21's answer about one return's exchange order, asked at most once per ingestion (docs/design.md
 * §2.8): for a new return only when the answer can change the decision, for a return already booked
 * only when its booking followed an exchange (to see whether Ap21 reversed it).
 */
class ExchangeLookups {
  private answer: Promise<ExchangeOrderLookup> | undefined;

  constructor(
    private readonly deps: Pick<ReturnIntakeDeps, 'exchangeOrders' | 'ledger'>,
    private readonly order: Ap21Order,
    private readonly ret: Ap21Return,
    /** Only money not yet moved can be settled by an exchange instead: a return Refundid or Ap21 refunded is booked as it went. */
    private readonly moneyToDecide: boolean,
  ) {}

  /** What a new return is priced with: Ap21's answer when the rule needs one. */
  async forNewReturn(): Promise<ExchangeOrderLookup> {
    return this.moneyToDecide && needsExchangeLookup(exchangeFactsOf(this.ret), this.deps.ledger.exchanges) ? this.lookUp() : undefined;
  }

  /** Whether Ap21 still shows the return exchanged (its status, or its exchange order), whatever the stage's policy. */
  async stillShown(): Promise<boolean> {
    const facts = exchangeFactsOf(this.ret);
    const { statuses } = this.deps.ledger.exchanges;
    if (exchangeShown(facts, undefined, statuses)) return true;
    return exchangeShown(facts, facts.authorisationNumber === undefined ? undefined : await this.lookUp(), statuses);
  }

  private lookUp(): Promise<ExchangeOrderLookup> {
    this.answer ??= this.ask();
    return this.answer;
  }

  private async ask(): Promise<ExchangeOrderLookup> {
    const number = this.ret.returnAuthorisationNumber;
    if (number === undefined || !this.deps.exchangeOrders) return undefined;
    let found: Ap21Order | undefined;
    try {
      found = await this.deps.exchangeOrders.getOrderByNumber(number);
    } catch (error) {
      if (error instanceof Ap21Error && error.retryable) throw error;
      // When in doubt, no money: the return waits for an operator with the reason.
      throw new InvalidRefundError(
        `return ${this.ret.returnId} names exchange order ${number}, and Ap21 could not say whether it exists: ${(error as Error).message}`,
      );
    }
    if (!found) return { found: false };
    if (found.personId !== this.order.personId) {
      throw new InvalidRefundError(`return ${this.ret.returnId} names exchange order ${number}, which is another person's order in Ap21`);
    }
    const sold = found.lines.filter((line) => line.quantity > 0);
    const valueMinor = found.currency === this.order.currency ? sold.reduce((sum, line) => sum + line.value.minor, 0) : undefined;
    return { found: true, orderNumber: found.orderNumber, ...(valueMinor !== undefined && { valueMinor }) };
  }
}

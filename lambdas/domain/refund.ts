import type { Money } from './money';

/**
 * Refund state machine (docs/design.md §2.2). A refund is a set of order lines plus an amount against one
 * payment, paid through exactly one channel. States that still hold the ledger reservation are
 * listed in HOLDING_STATES; `paid` has moved it to refunded, `released` has given it back.
 */
export const REFUND_STATES = [
  'awaiting_receipt',
  'offer_pending',
  'offered',
  'offer_cancelling',
  'reversal_pending',
  'reversal_submitted',
  'refundid_pending',
  'paid',
  'manual_review',
  'released',
] as const;
export type RefundState = (typeof REFUND_STATES)[number];

/**
 * `exchange`: no money moves, the units were settled by an exchange (an Ap21 exchange order,
 * docs/design.md §2.8): recorded `paid` with the money that moved, often none, and never dispatched.
 */
export const CHANNELS = ['apace', 'reversal', 'refundid', 'exchange'] as const;
export type Channel = (typeof CHANNELS)[number];

export const HOLDING_STATES: ReadonlySet<RefundState> = new Set([
  'awaiting_receipt',
  'offer_pending',
  'offered',
  'offer_cancelling',
  'reversal_pending',
  'reversal_submitted',
  'refundid_pending',
  'manual_review',
]);

/**
 * States in which refund-relay owes an outbound call at `nextAttemptAt` (the outbox):
 * create or cancel the Apace offer, submit the reversal, or follow up a submitted reversal
 * (its `nextAttemptAt` is the lease of the dispatcher that submitted it, or the next status sync).
 */
export const WORK_STATES: ReadonlySet<RefundState> = new Set(['offer_pending', 'offer_cancelling', 'reversal_pending', 'reversal_submitted']);

/** What a refund claims from the ledger: units per order line and an amount from one payment. */
export interface RefundClaim {
  readonly lines: Readonly<Record<string, number>>;
  readonly paymentId: string;
  readonly amount: Money;
}

/**
 * Where a refund came from. `ap21_refundid`: a return Ap21 shows as already refunded by Refundid;
 * `ap21_refunded`: a return Ap21 refunded itself to the original payment (`StockUpdate=False`).
 * Both are records of money that already moved, never work to do. `ap21_exchange`: a return Ap21
 * settled by an exchange order, recorded on the `exchange` channel (docs/design.md §2.8).
 */
export type RefundSourceKind = 'ap21_return' | 'refundid_rma' | 'ap21_refundid' | 'ap21_refunded' | 'ap21_exchange' | 'manual';

export interface Refund extends RefundClaim {
  readonly id: string;
  readonly orderId: string;
  readonly state: RefundState;
  readonly channel: Channel;
  readonly source: { readonly kind: RefundSourceKind; readonly ref: string };
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Expiry of the Apace offer we ask for; null when the refund never goes through Apace. */
  readonly offerExpiresAt: string | null;
  /** Last time Apace called the verification URL, and how often. */
  readonly lastVerifiedAt?: string;
  readonly verifications?: number;
  readonly paidAt?: string;
  readonly confirmedAt?: string;
  readonly reason?: string;
  /** What settled its units instead of money (an exchange, a Refundid exchange or credit, docs/design.md §2.8). */
  readonly settledBy?: string;
  readonly attempts: number;
  readonly nextAttemptAt?: string;
  /** External identifiers: Apace refund id and link, provider transaction ids, Refundid ids. */
  readonly refs: Readonly<Record<string, string>>;
}

/**
 * How a transition moves the refund's claim in the ledger: `settle` reserved → refunded (paid),
 * `release` reserved → available (ended unpaid), `reopen` refunded → reserved (a payout reported
 * done turned out to have failed, so the units are held again for an operator), `unbook` refunded →
 * available (an exchange Ap21 reversed: the units are a plain return's again, docs/design.md §2.8).
 */
export type LedgerEffect = 'hold' | 'settle' | 'release' | 'reopen' | 'unbook';

/**
 * A guard is a condition beyond the source state:
 * - `apace_quiet`: Apace has not been told `allow_refund: true` within the claim window, so no
 *   Apace payout can be in flight; only then may a refund leave the Apace channel.
 * - `unconfirmed`: the Apace payment has not been confirmed yet (makes `processed` idempotent).
 * - `due`: the refund's work is due, i.e. no other dispatcher holds a lease on it. Claims take
 *   the lease, so of two dispatchers holding the same snapshot only one can claim.
 * - `payout_not_failed`: Apace has not reported this refund's payout failed. After a failure only
 *   Apace's own record may book an Apace payment (docs/design.md §2.5, truth before money).
 * - `off_apace`: the refund is not routed through Apace (an operator's re-route needs no cancel).
 * - `never_offered`: no Apace create was ever attempted, so Apace has never heard of the refund.
 * - `receipt_awaited`: the refund waits for Ap21 to show its return received (docs/design.md §2.9):
 *   `awaiting_receipt`, or in manual review only because that wait ran out (its reason says so;
 *   any later transition replaces the reason). No money was ever asked for, so none can be in flight.
 * - `receipt_unseen`: refund-relay has not seen Ap21 show the refund's return received, nor an
 *   operator send it to card reversal regardless (`refs.returnReceivedAt`, `refs.receiptWaivedAt`):
 *   only then may a refund that left Apace wait for the receipt (docs/design.md §2.9).
 * - `apace_payable_in_review`: `payout_not_failed`, and the refund in review is on the Apace channel
 *   or `receipt_awaited` holds (it left Apace and no money was asked for since).
 * - `not_settled_elsewhere`: Ap21 has not been seen showing the refund's return exchanged or refunded
 *   elsewhere (`refs.settledElsewhere`), or an operator sent the refund on since: only then may a cancelled Apace offer go on to card reversal,
 *   even when the read that saw it landed while Apace was answering the cancel, and only then may
 *   a dispatcher claim a card reversal's submission (docs/design.md §2.3).
 * - `reversal_owed`: `not_settled_elsewhere` on the card-reversal channel; on the others it holds (an
 *   offer marked settled elsewhere must still be cancelled at Apace, so its claims are not refused).
 * - `mark_as_seen`: the mark (`refs.settledElsewhere`) is as the writer's snapshot shows it. Always
 *   true of the refund as it is; in the store's write condition it makes a payment recorded from a
 *   snapshot older than the mark lose, so the writer records it again knowing the mark (a card
 *   reversal or an Apace payout booked after Ap21 showed the return settled elsewhere is seen as paid
 *   twice, docs/design.md §2.3).
 */
export type Guard =
  | 'apace_quiet'
  | 'unconfirmed'
  | 'due'
  | 'payout_not_failed'
  | 'off_apace'
  | 'never_offered'
  | 'receipt_awaited'
  | 'receipt_unseen'
  | 'apace_payable_in_review'
  | 'not_settled_elsewhere'
  | 'reversal_owed'
  | 'mark_as_seen';

/**
 * The reason a refund whose return Ap21 did not show received in time is in manual review with
 * (docs/design.md §2.9). The receipt, seen later, still releases it: guard `receipt_awaited`.
 */
export const RECEIPT_OVERDUE_REASON = 'return not received in Ap21 within';

/**
 * How long a Refundid RMA may wait in `refundid_pending` (Refundid said `refunding`) for Refundid to say
 * whether it paid, and how often an operator is reminded after (docs/design.md §2.5, the wait table).
 * Refundid pays the customer itself and refund-relay only hears the outcome, so running out decides
 * nothing: the refund stays pending (a late `refundid` or `failed` still applies) with the reason.
 */
export const REFUNDID_RESULT_WAIT_MS = 7 * 86_400_000;
export const REFUNDID_REMINDER_MS = 86_400_000;
/** The reason a Refundid RMA whose outcome is overdue carries (`refundid_overdue`). */
export const REFUNDID_OVERDUE_REASON = 'Refundid has not said whether it paid';

/** On a refund's `refs`: when refund-relay first saw Ap21 show the refund's return received (docs/design.md §2.9). */
export const RETURN_RECEIVED_REF = 'returnReceivedAt';
/** On a refund's `refs`: when an operator sent the refund on to card reversal (redrive, reroute), received or not. */
export const RECEIPT_WAIVED_REF = 'receiptWaivedAt';
/**
 * On a refund's `refs`: why (`settledElsewhere`) and when (`settledElsewhereAt`) Ap21 showed the
 * return of a refund exchanged or already refunded (docs/design.md §2.3, §2.8):
 * a live Apace offer is cancelled first, then the refund goes to manual review, never to the card; a
 * card reversal is never submitted again; on a card reversal already paid it records, once, that
 * the customer was paid twice.
 */
export const SETTLED_ELSEWHERE_REF = 'settledElsewhere';
export const SETTLED_ELSEWHERE_AT_REF = 'settledElsewhereAt';
/**
 * On a refund's `refs`: the mark (its `settledElsewhereAt`) an operator sent the refund on over (redrive, reroute).
 * Named, not compared by time: the operator's clock and the intake's are two clocks, and a mark written after the
 * operator acted must stand however they differ.
 */
export const SETTLED_ELSEWHERE_WAIVED_REF = 'settledElsewhereWaived';

/** The reason a refund goes to manual review instead of (again) to the card; none once an operator sent it on over this mark. */
export function settledElsewhere(refund: Pick<Refund, 'refs'>): string | undefined {
  const reason = refund.refs[SETTLED_ELSEWHERE_REF];
  const at = refund.refs[SETTLED_ELSEWHERE_AT_REF];
  if (reason === undefined || at === undefined) return undefined;
  return refund.refs[SETTLED_ELSEWHERE_WAIVED_REF] === at ? undefined : reason;
}

export interface TransitionRule {
  readonly from: readonly RefundState[];
  /** Only when the refund is currently routed through this channel. */
  readonly onlyChannel?: Channel;
  /** The new state; `unchanged` for bookkeeping events (claims, rescheduling). */
  readonly to: RefundState | 'unchanged';
  /** The channel after the transition; unchanged when absent. */
  readonly channel?: Channel;
  readonly ledger: LedgerEffect;
  /** Conditions beyond the source state, all of which must hold. */
  readonly guard?: Guard | readonly Guard[];
  readonly stamps?: readonly ('paidAt' | 'confirmedAt')[];
  /** Counts a provider call attempt. */
  readonly countsAttempt?: boolean;
  /** Starts a fresh attempt budget (a new channel, or an operator's redrive). */
  readonly resetsAttempts?: boolean;
  /**
   * Paid at Apace's `pending`: its `processed` is awaited, and the refund is followed up with Apace
   * at `nextAttemptAt` (default: `apaceProcessedWithinMs` from now) until confirmed or found failed.
   */
  readonly awaitsProcessed?: boolean;
  /** Records `refs.apacePayout = 'failed'`: from then on only Apace's own record books an Apace payment. */
  readonly recordsPayoutFailed?: boolean;
  /** The offer is only now requested: its expiry is `ctx.offerExpiresAt` (when given), counted from now. */
  readonly renewsOfferExpiry?: boolean;
  /** Bookkeeping that leaves `nextAttemptAt` as it is: a dispatcher's lease or the next due time stands. */
  readonly keepsSchedule?: boolean;
  /** An operator's "card reversal now": records `refs.receiptWaivedAt`, so a refund that left Apace does not wait for the receipt. */
  readonly waivesReceipt?: boolean;
}

/**
 * Where an Apace payment is still booked: no other channel has sent money. `awaiting_receipt` holds
 * a refund that left Apace and waits to be reversed on the card (docs/design.md §2.9) as well.
 */
const APACE_PAYABLE: readonly RefundState[] = ['offer_pending', 'offered', 'offer_cancelling', 'reversal_pending', 'awaiting_receipt'];

/**
 * Every transition there is. Leaving the Apace channel always passes `offer_cancelling` (cancel
 * first, docs/design.md §2.3); an Apace payment is accepted while no other channel has sent money.
 */
export const RULES = {
  /**
   * Ap21 shows the return received (docs/design.md §2.9): the money the stage holds until then may
   * move now, on the channel chosen when the return was seen. A fresh attempt budget.
   */
  return_received: {
    from: ['awaiting_receipt', 'manual_review'],
    onlyChannel: 'reversal',
    to: 'reversal_pending',
    ledger: 'hold',
    guard: 'receipt_awaited',
    resetsAttempts: true,
  },
  /** The same for a refund routed through Apace: the offer is requested only now, with an expiry counted from now. */
  return_received_for_offer: {
    from: ['awaiting_receipt', 'manual_review'],
    onlyChannel: 'apace',
    to: 'offer_pending',
    ledger: 'hold',
    guard: 'receipt_awaited',
    resetsAttempts: true,
    renewsOfferExpiry: true,
  },
  /** The bounded wait for the receipt ran out (`nextAttemptAt`): an operator is told, with the reason. */
  receipt_overdue: { from: ['awaiting_receipt'], to: 'manual_review', ledger: 'hold', guard: 'due' },
  /**
   * A refund that left Apace for card reversal, on a stage that pays Apace when the return is seen
   * but reverses this card only once Ap21 shows it received, and whose receipt was not seen: it
   * waits as a new refund would, until `ctx.nextAttemptAt` (the end of the wait counted from when
   * the return was seen), and `return_received` releases it (docs/design.md §2.9).
   */
  fallback_awaits_receipt: {
    from: ['reversal_pending'],
    onlyChannel: 'reversal',
    to: 'awaiting_receipt',
    ledger: 'hold',
    guard: 'receipt_unseen',
  },
  /**
   * Ap21 shows the return of a refund that does not wait for it received: recorded
   * (`refs.returnReceivedAt`) so that a later fallback from Apace pays at once. Schedule untouched.
   * Also when paid through Apace at `pending` (its payout may still fail) or in review (Apace may
   * report it failed): either may fall back to the card later, and nothing reads the receipt again.
   */
  return_received_noted: {
    from: ['offer_pending', 'offered', 'offer_cancelling', 'reversal_pending', 'paid', 'manual_review'],
    to: 'unchanged',
    ledger: 'hold',
    keepsSchedule: true,
  },
  /**
   * Ap21 shows the return of a refund whose provider call may be under way exchanged or already
   * refunded: records the mark only (`refs.settledElsewhere`, `refs.settledElsewhereAt`). An offer
   * already being cancelled (`offer_cancelling`, e.g. an expiry cancel Apace keeps failing) then goes
   * to manual review once Apace cancels, not to the card; a card reversal already submitted (its
   * call in flight, or its answer unknown) is never submitted again (docs/design.md §2.3). Schedule,
   * lease and reason untouched.
   */
  settled_elsewhere_noted: { from: ['offer_cancelling', 'reversal_submitted'], to: 'unchanged', ledger: 'hold', keepsSchedule: true },
  /**
   * Ap21 shows the return of a refund already reversed on the card refunded or exchanged elsewhere as
   * well, or Refundid paid for units another channel (card, Apace, exchange) already settled: the
   * customer was paid twice. Records the mark once (the write is refused to a second reader), for an
   * operator to recover the money (docs/design.md §2.3).
   */
  paid_twice_noted: { from: ['paid'], to: 'unchanged', ledger: 'hold', keepsSchedule: true },
  /** A provider call claimed; for a submitted card reversal (a status query, maybe a re-submission) only while still owed. */
  attempt_started: {
    from: ['offer_pending', 'offer_cancelling', 'reversal_submitted'],
    to: 'unchanged',
    ledger: 'hold',
    countsAttempt: true,
    guard: ['due', 'reversal_owed'],
  },
  /**
   * A submitted card reversal marked settled elsewhere: the provider is only asked where it stands,
   * never sent it again (docs/design.md §2.3). Counts the attempt and takes the lease.
   */
  reversal_status_started: { from: ['reversal_submitted'], onlyChannel: 'reversal', to: 'unchanged', ledger: 'hold', countsAttempt: true, guard: 'due' },
  rescheduled: { from: ['offer_pending', 'offer_cancelling', 'reversal_pending', 'reversal_submitted', 'offered'], to: 'unchanged', ledger: 'hold' },
  /** The offer exists at Apace; callers record whether its delivery to the customer is owed (`refs.offerDelivery`). A fresh attempt budget, for the delivery. */
  offer_created: { from: ['offer_pending'], to: 'offered', ledger: 'hold', resetsAttempts: true },
  /**
   * Delivery of the offer to the customer claimed (docs/design.md §2.6): counts the attempt, takes
   * the lease, and callers record the intent (`refs.offerDelivery = 'sending'`) before the call.
   */
  offer_delivery_started: { from: ['offered'], to: 'unchanged', ledger: 'hold', countsAttempt: true, guard: 'due' },
  /** The customer has been sent the offer (`refs.offerDelivery = 'delivered'`); it is next due when it expires. */
  offer_delivered: { from: ['offered'], to: 'unchanged', ledger: 'hold' },
  offer_cancel_started: { from: ['offer_pending', 'offered'], to: 'offer_cancelling', ledger: 'hold', guard: 'apace_quiet', resetsAttempts: true },
  offer_cancelled: {
    from: ['offer_cancelling'],
    to: 'reversal_pending',
    channel: 'reversal',
    ledger: 'hold',
    resetsAttempts: true,
    guard: 'not_settled_elsewhere',
  },
  offer_cancel_refused: { from: ['offer_cancelling'], to: 'offered', ledger: 'hold' },
  apace_paid: {
    from: APACE_PAYABLE,
    to: 'paid',
    channel: 'apace',
    ledger: 'settle',
    guard: ['payout_not_failed', 'mark_as_seen'],
    stamps: ['paidAt'],
    awaitsProcessed: true,
  },
  /**
   * An Apace payment booked for a refund in review: one on the Apace channel, or one that left Apace
   * and is in review only because its wait for the receipt ran out (no other channel has asked for
   * money, docs/design.md §2.9), which a later receipt would otherwise send to the card as well.
   */
  apace_paid_after_review: {
    from: ['manual_review'],
    to: 'paid',
    channel: 'apace',
    ledger: 'settle',
    guard: ['apace_payable_in_review', 'mark_as_seen'],
    stamps: ['paidAt'],
    awaitsProcessed: true,
  },
  apace_processed: {
    from: APACE_PAYABLE,
    to: 'paid',
    channel: 'apace',
    ledger: 'settle',
    guard: ['payout_not_failed', 'mark_as_seen'],
    stamps: ['paidAt', 'confirmedAt'],
  },
  apace_confirmed: { from: ['paid'], onlyChannel: 'apace', to: 'paid', ledger: 'hold', guard: 'unconfirmed', stamps: ['confirmedAt'] },
  /** Paid at `pending`, `processed` still missing: asked Apace again, ask again at `nextAttemptAt`. */
  apace_follow_up: { from: ['paid'], onlyChannel: 'apace', to: 'unchanged', ledger: 'hold', guard: 'unconfirmed', awaitsProcessed: true },
  /**
   * Apace reports (and, when that contradicted what we knew, its own record confirms) that the
   * payout of a refund booked paid at `pending` failed: the customer has nothing. Apace can no
   * longer pay a failed offer, so no cancel is needed: the units are held again and the refund goes
   * straight to card reversal (docs/design.md §2.5). Callers record `refs.apacePayout = 'failed'`.
   */
  apace_payout_failed: {
    from: ['paid'],
    onlyChannel: 'apace',
    to: 'reversal_pending',
    channel: 'reversal',
    ledger: 'reopen',
    resetsAttempts: true,
    recordsPayoutFailed: true,
  },
  /** The same for an offer whose payout failed before we booked it (`failed` first, or a cancel refused as failed). */
  apace_offer_failed: {
    from: ['offer_pending', 'offered', 'offer_cancelling', 'manual_review'],
    onlyChannel: 'apace',
    to: 'reversal_pending',
    channel: 'reversal',
    ledger: 'hold',
    resetsAttempts: true,
    recordsPayoutFailed: true,
  },
  /** Apace never heard of the refund and must not (e.g. its currency is not Apace's): card reversal at once. */
  apace_skipped: {
    from: ['offer_pending'],
    onlyChannel: 'apace',
    to: 'reversal_pending',
    channel: 'reversal',
    ledger: 'hold',
    guard: 'never_offered',
    resetsAttempts: true,
  },
  reversal_submitted: {
    from: ['reversal_pending'],
    to: 'reversal_submitted',
    ledger: 'hold',
    countsAttempt: true,
    guard: ['due', 'not_settled_elsewhere'],
  },
  reversal_succeeded: { from: ['reversal_submitted'], to: 'paid', ledger: 'settle', stamps: ['paidAt'], guard: 'mark_as_seen' },
  reversal_retry: { from: ['reversal_submitted'], to: 'reversal_pending', ledger: 'hold' },
  /**
   * The provider itself proves, later, that the reversal paid (a signed PayPro IPN naming our
   * refund, or Optty's transaction details read over its authenticated API) while our own calls
   * concluded otherwise: a retry is due, or an operator was to look because the answer was
   * ambiguous. A refund still awaiting the answer to our call takes `reversal_succeeded` instead.
   */
  reversal_confirmed: {
    from: ['reversal_pending', 'manual_review'],
    onlyChannel: 'reversal',
    to: 'paid',
    ledger: 'settle',
    stamps: ['paidAt'],
    guard: 'mark_as_seen',
  },
  refundid_refunded: { from: ['refundid_pending'], to: 'paid', ledger: 'settle', stamps: ['paidAt'] },
  refundid_failed: { from: ['refundid_pending'], to: 'released', ledger: 'release' },
  review_required: {
    from: ['offer_pending', 'offer_cancelling', 'reversal_pending', 'reversal_submitted'],
    to: 'manual_review',
    ledger: 'hold',
  },
  redrive_reversal: { from: ['manual_review'], onlyChannel: 'reversal', to: 'reversal_pending', ledger: 'hold', resetsAttempts: true, waivesReceipt: true },
  redrive_apace: {
    from: ['manual_review'],
    onlyChannel: 'apace',
    to: 'offer_cancelling',
    ledger: 'hold',
    guard: 'apace_quiet',
    resetsAttempts: true,
    waivesReceipt: true,
  },
  released_by_operator: { from: ['manual_review'], to: 'released', ledger: 'release' },
  /** An operator sends a refund in review that Apace cannot pay to card reversal (an Apace one goes through `redrive_apace` or `apace_offer_failed`). */
  rerouted_by_operator: {
    from: ['manual_review'],
    to: 'reversal_pending',
    channel: 'reversal',
    ledger: 'hold',
    guard: 'off_apace',
    resetsAttempts: true,
    waivesReceipt: true,
  },
  /**
   * Notes another system's id for the refund (e.g. the Ap21 return that shows a Refundid RMA).
   * Only from states without outbound work: in a work state or `offered`, a bookkeeping write
   * would also move `nextAttemptAt` and could cut a dispatcher's lease short.
   */
  external_ref_recorded: { from: ['refundid_pending', 'paid', 'manual_review', 'released'], to: 'unchanged', ledger: 'hold' },
  /**
   * Ap21 reversed the exchange that settled these units (its exchange order deleted, the return a
   * plain return again, docs/design.md §2.8): the record ends and its units are available again, for
   * the plain refund the intake creates next.
   */
  exchange_reversed: { from: ['paid'], onlyChannel: 'exchange', to: 'released', ledger: 'unbook' },
  /**
   * A Refundid payout booked twice because its RMA's push and the read of Ap21's record of it each
   * wrote before seeing the other (docs/design.md §2.3): Ap21's record is withdrawn, its units and
   * money back to available, once the RMA's own refund is tied to it (`refs.ap21ReturnId`, first wins).
   */
  refundid_record_withdrawn: { from: ['paid'], onlyChannel: 'refundid', to: 'released', ledger: 'unbook' },
  /**
   * Ap21 shows the money a waiting refund would release is no longer owed (its return exchanged or
   * already refunded meanwhile, docs/design.md §2.9): an operator decides, with the reason, which no
   * later receipt releases.
   */
  receipt_release_refused: { from: ['awaiting_receipt', 'manual_review'], to: 'manual_review', ledger: 'hold', guard: 'receipt_awaited' },
  /**
   * Refundid has not said within `REFUNDID_RESULT_WAIT_MS` whether it paid the RMA: the refund stays
   * pending with the reason, and is due again at `ctx.nextAttemptAt` (the next reminder).
   */
  refundid_overdue: { from: ['refundid_pending'], to: 'unchanged', ledger: 'hold', guard: 'due' },
} as const satisfies Record<string, TransitionRule>;

export type RefundEvent = keyof typeof RULES;
export const REFUND_EVENTS = Object.keys(RULES) as RefundEvent[];

export function ruleFor(event: RefundEvent): TransitionRule {
  return RULES[event];
}

/** A rule's guards, all of which must hold. */
export function guardsOf(rule: TransitionRule): readonly Guard[] {
  return rule.guard === undefined ? [] : typeof rule.guard === 'string' ? [rule.guard] : rule.guard;
}

export interface TransitionContext {
  /** UTC ISO time of the event as refund-relay saw it. */
  readonly now: string;
  /** How long after an `allow_refund: true` answer Apace may still pay (docs/design.md §2.3). */
  readonly claimWindowMs: number;
  /** Why the refund is in its new state (manual review, release); cleared when absent. */
  readonly reason?: string;
  readonly refs?: Readonly<Record<string, string>>;
  /** When the outbound work of a work state should be attempted; now when absent. */
  readonly nextAttemptAt?: string;
  /** How long after a `pending` Apace's `processed` may take before we ask Apace (`APACE_PROCESSED_WITHIN_SECONDS`). */
  readonly apaceProcessedWithinMs?: number;
  /** The expiry of an offer requested only now (rules with `renewsOfferExpiry`). */
  readonly offerExpiresAt?: string;
}

/** `APACE_PROCESSED_WITHIN_SECONDS`' default: an hour, against the ~20 s Apace documents (docs/providers.md §1). */
export const DEFAULT_APACE_PROCESSED_WITHIN_MS = 3_600_000;

/**
 * Why an event did not apply. `superseded`: the refund changed between the caller's snapshot and
 * the write, so the caller must look again (the store never re-decides for a caller's snapshot).
 */
export type Rejection = 'already_applied' | 'wrong_state' | 'apace_recently_verified' | 'not_due' | 'superseded';

export type Plan = { readonly ok: true; readonly refund: Refund; readonly ledger: LedgerEffect } | { readonly ok: false; readonly why: Rejection };

/** The earliest `lastVerifiedAt` that still blocks leaving the Apace channel. */
export function apaceQuietCutoff(ctx: TransitionContext): string {
  return new Date(Date.parse(ctx.now) - ctx.claimWindowMs).toISOString();
}

export function guardHolds(refund: Refund, guard: Guard | undefined, ctx: TransitionContext): boolean {
  switch (guard) {
    case undefined:
      return true;
    case 'apace_quiet':
      // A verification at or after the offer's expiry was answered `allow_refund: false`.
      return (
        refund.lastVerifiedAt === undefined ||
        refund.lastVerifiedAt < apaceQuietCutoff(ctx) ||
        (refund.offerExpiresAt !== null && refund.lastVerifiedAt >= refund.offerExpiresAt)
      );
    case 'unconfirmed':
      return refund.confirmedAt === undefined;
    case 'due':
      return refund.nextAttemptAt === undefined || refund.nextAttemptAt <= ctx.now;
    case 'payout_not_failed':
      return !apacePayoutFailed(refund);
    case 'off_apace':
      return refund.channel !== 'apace';
    case 'never_offered':
      return refund.attempts === 0 && refund.refs.apaceRefundId === undefined;
    case 'receipt_awaited':
      return refund.state === 'awaiting_receipt' || (refund.reason?.startsWith(RECEIPT_OVERDUE_REASON) ?? false);
    case 'apace_payable_in_review':
      return !apacePayoutFailed(refund) && (refund.channel === 'apace' || guardHolds(refund, 'receipt_awaited', ctx));
    case 'receipt_unseen':
      return refund.refs[RETURN_RECEIVED_REF] === undefined && refund.refs[RECEIPT_WAIVED_REF] === undefined;
    case 'not_settled_elsewhere':
      return settledElsewhere(refund) === undefined;
    case 'reversal_owed':
      return refund.channel !== 'reversal' || settledElsewhere(refund) === undefined;
    case 'mark_as_seen':
      return true;
  }
}

/** Decides whether `event` applies to `refund` now, and what the refund becomes. Pure. */
export function planTransition(refund: Refund, event: RefundEvent, ctx: TransitionContext): Plan {
  const rule = ruleFor(event);
  const to = rule.to === 'unchanged' ? refund.state : rule.to;
  const inSourceState = rule.from.includes(refund.state) && (!rule.onlyChannel || rule.onlyChannel === refund.channel);
  const failed = guardsOf(rule).find((guard) => !guardHolds(refund, guard, ctx));
  if (!inSourceState || failed !== undefined) {
    const alreadyThere = rule.to !== 'unchanged' && refund.state === rule.to && (rule.channel === undefined || rule.channel === refund.channel);
    if (alreadyThere && (!inSourceState || failed === 'unconfirmed')) return { ok: false, why: 'already_applied' };
    if (inSourceState && failed === 'apace_quiet') return { ok: false, why: 'apace_recently_verified' };
    if (inSourceState && failed === 'due') return { ok: false, why: 'not_due' };
    return { ok: false, why: 'wrong_state' };
  }
  const next: Record<string, unknown> = {
    ...refund,
    state: to,
    channel: rule.channel ?? refund.channel,
    updatedAt: ctx.now,
    refs: {
      ...refund.refs,
      ...ctx.refs,
      ...(rule.recordsPayoutFailed && { apacePayout: 'failed' }),
      ...(rule.waivesReceipt && { [RECEIPT_WAIVED_REF]: ctx.now }),
      // The operator sends it on over the mark they saw, and over no later one.
      ...(rule.waivesReceipt &&
        refund.refs[SETTLED_ELSEWHERE_AT_REF] !== undefined && { [SETTLED_ELSEWHERE_WAIVED_REF]: refund.refs[SETTLED_ELSEWHERE_AT_REF] }),
    },
  };
  for (const stamp of rule.stamps ?? []) next[stamp] = (refund as unknown as Record<string, unknown>)[stamp] ?? ctx.now;
  if (rule.resetsAttempts) next.attempts = 0;
  if (rule.countsAttempt) next.attempts = refund.attempts + 1;
  if (rule.renewsOfferExpiry && ctx.offerExpiresAt !== undefined) next.offerExpiresAt = ctx.offerExpiresAt;
  if (ctx.reason !== undefined) next.reason = ctx.reason;
  else if (rule.to !== 'unchanged') delete next.reason;
  if (rule.keepsSchedule) {
    // Left as it was: bookkeeping must not cut a lease short nor make a refund due.
  } else if (WORK_STATES.has(to)) next.nextAttemptAt = ctx.nextAttemptAt ?? ctx.now;
  else if (to === 'awaiting_receipt' && ctx.nextAttemptAt !== undefined) next.nextAttemptAt = ctx.nextAttemptAt;
  else if (to === 'offered' && ctx.nextAttemptAt !== undefined) next.nextAttemptAt = ctx.nextAttemptAt;
  else if (to === 'refundid_pending') {
    // The next reminder stands until a `refundid_overdue` sets the one after it.
    if (ctx.nextAttemptAt !== undefined) next.nextAttemptAt = ctx.nextAttemptAt;
  } else if (rule.awaitsProcessed && next.confirmedAt === undefined)
    next.nextAttemptAt = ctx.nextAttemptAt ?? new Date(Date.parse(ctx.now) + (ctx.apaceProcessedWithinMs ?? DEFAULT_APACE_PROCESSED_WITHIN_MS)).toISOString();
  else delete next.nextAttemptAt;
  return { ok: true, refund: next as unknown as Refund, ledger: rule.ledger };
}

/**
 * Whether Apace may pay a refund it asks about: `allowed` while the offer is live, `issued_elsewhere`
 * when the refund went out through another channel, `refused` otherwise.
 */
export type VerificationDecision = 'allowed' | 'issued_elsewhere' | 'refused';

/** The fields of a refund the Apace verification decision depends on. */
export type VerificationView = Pick<Refund, 'state' | 'channel' | 'offerExpiresAt'>;

/** What Apace is told when it asks whether it may pay (docs/design.md §2.3); its wording is Apace's (providers/apace/schemas.ts). */
export function verificationDecision(view: VerificationView, now: string): VerificationDecision {
  if (view.state === 'offer_pending' || view.state === 'offered') {
    return view.offerExpiresAt !== null && now < view.offerExpiresAt ? 'allowed' : 'refused';
  }
  const issuedElsewhere = view.state === 'reversal_submitted' || view.state === 'refundid_pending' || (view.state === 'paid' && view.channel !== 'apace');
  return issuedElsewhere ? 'issued_elsewhere' : 'refused';
}

/** Apace reported this refund's payout failed (recorded by `apace_payout_failed` / `apace_offer_failed`). */
export function apacePayoutFailed(refund: Pick<Refund, 'refs'>): boolean {
  return refund.refs.apacePayout === 'failed';
}

/** Paid through Apace at `pending`, `processed` not yet seen: followed up with Apace at `nextAttemptAt`. */
export function awaitsApaceConfirmation(refund: Refund): boolean {
  return refund.state === 'paid' && refund.channel === 'apace' && refund.confirmedAt === undefined && refund.nextAttemptAt !== undefined;
}

/**
 * An offer created at Apace that has not reached the customer yet (docs/design.md §2.6): its
 * delivery is `pending`, or `sending` (claimed, outcome not recorded: a lost answer or a crash).
 */
export function offerDeliveryOwed(refund: Pick<Refund, 'state' | 'refs'>): boolean {
  return refund.state === 'offered' && (refund.refs.offerDelivery === 'pending' || refund.refs.offerDelivery === 'sending');
}

/**
 * When a refund next needs refund-relay to act, or undefined when it waits on nobody but others.
 * An offer is due when its delivery is owed, when it expires (to be cancelled) or when a follow-up
 * was scheduled for it.
 */
export function refundDueAt(refund: Refund): string | undefined {
  if (WORK_STATES.has(refund.state)) return refund.nextAttemptAt ?? refund.updatedAt;
  // The end of the wait for the receipt (docs/design.md §2.9).
  if (refund.state === 'awaiting_receipt') return refund.nextAttemptAt;
  if (awaitsApaceConfirmation(refund)) return refund.nextAttemptAt;
  // Refundid's outcome overdue: an operator is told, then reminded (docs/design.md §2.5, the wait table).
  if (refund.state === 'refundid_pending') return refund.nextAttemptAt ?? new Date(Date.parse(refund.createdAt) + REFUNDID_RESULT_WAIT_MS).toISOString();
  if (offerDeliveryOwed(refund)) return refund.nextAttemptAt ?? refund.updatedAt;
  if (refund.state !== 'offered') return undefined;
  const expiry = refund.offerExpiresAt ?? refund.updatedAt;
  return refund.nextAttemptAt && refund.nextAttemptAt > expiry ? refund.nextAttemptAt : expiry;
}

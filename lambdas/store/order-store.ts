import type { NewRefund, Order } from '../domain/order';
import type { ProviderId } from '../providers/registry';
import type { Refund, RefundEvent, RefundState, Rejection, TransitionContext, VerificationView } from '../domain/refund';

/** Conflicting writers kept changing the refund between our read and our write. Retryable (503). */
export class StoreContentionError extends Error {
  override readonly name = 'StoreContentionError';
}

/** Who caused a change (the timeline answers "who did what, when" for on-call engineers): a provider (lambdas/providers/registry.ts) or one of refund-relay's own parts. */
export type Actor = ProviderId | 'dispatcher' | 'sweeper' | 'operator' | 'seed';

export interface Audit {
  readonly actor: Actor;
  readonly note?: string;
  /** The raw inbound message that caused the change, kept verbatim (bounded in size). */
  readonly raw?: string;
}

/**
 * One compact entry of an order's timeline (docs/design.md §2.1): who did what, when, and where the
 * raw message that caused it is kept (`inbox`, the sort key of its inbox item in the order's
 * partition), never the message itself, so retries and webhooks add only a few dozen bytes.
 */
export interface TimelineEntry {
  readonly at: string;
  readonly event: string;
  readonly actor: Actor;
  readonly note?: string;
  readonly refundId?: string;
  readonly from?: RefundState;
  readonly to?: RefundState;
  /** The inbox item holding the raw inbound message (kept with TTL), when there was one. */
  readonly inbox?: string;
}

export interface StoredOrder extends Order {
  /** The recent window of the timeline; older entries are in audit items (`readTimeline` merges them). */
  readonly timeline: readonly TimelineEntry[];
  readonly dueAt?: string;
}

export type OpenWithRefund =
  { readonly opened: true; readonly order: StoredOrder; readonly refund: Refund } | { readonly opened: false; readonly existing?: StoredOrder };

export type TransitionOutcome =
  | {
      readonly applied: true;
      readonly refund: Refund;
      /** The transition's write also set the order's due time (`Schedule`); false when it could not. */
      readonly scheduled?: boolean;
    }
  | { readonly applied: false; readonly why: Rejection; readonly refund: Refund };

/**
 * The order's due time (when it next needs the dispatcher; undefined: nothing to do), to be set by
 * a transition's own write instead of a write of its own, valid only while the order is still at
 * `version` (the caller computed it from the order at that version).
 */
export interface Schedule {
  readonly version: number;
  readonly dueAt: string | undefined;
}

/** An inbound message kept because it changed nothing (duplicate, late, or not bookable). */
export interface StoredInbound {
  /** The sender's key; a timeline entry's `inbox` is `INBOX#<source>#<key>`. */
  readonly key: string;
  readonly receivedAt: string;
  readonly source: Actor;
  readonly note: string;
  readonly raw?: string;
}

export interface ScanOptions {
  /** Items per page read. */
  readonly pageSize?: number;
  /** Pages read at most; past it the scan stops with `StoreScanLimitError`. */
  readonly maxPages?: number;
}

/** A scan met its page bound before the end of the table. */
export class StoreScanLimitError extends Error {
  override readonly name = 'StoreScanLimitError';
}

export interface InboundRecord {
  readonly source: Actor;
  /** The sender's event id, or a hash of the raw body when it has none. */
  readonly key: string;
  readonly raw: string;
  readonly note: string;
}

export type InboundStatus = 'pending' | 'processed' | 'failed';

/** An inbound message kept before it is acknowledged, until it has been processed (storage first). */
export interface PendingInbound extends InboundRecord {
  readonly orderId: string;
  readonly receivedAt: string;
  readonly status: InboundStatus;
  /** What processing needs besides the raw message (e.g. the Ap21 person, order and return ids). */
  readonly attributes: Readonly<Record<string, string>>;
}

/**
 * Where a paged read of a list that changes while it is read got to, so a bounded run can stop
 * and the next one resume: the filter it reads with, when that pass started, the row to read
 * next and the ids already read in the pass (to prove at its end that no row was skipped).
 */
export interface WatermarkCursor {
  readonly since: string;
  readonly startedAt: string;
  readonly startRow: number;
  readonly seen: readonly string[];
}

/** How far a poller has read a source: everything changed before `at` has been ingested. */
export interface Watermark {
  readonly name: string;
  readonly at: string;
  readonly cursor?: WatermarkCursor;
  readonly version: number;
  readonly updatedAt: string;
}

/**
 * A record no rule could process, set aside for an operator (docs/design.md §2.5): an Ap21 order
 * whose data is wrong, an order whose returns Ap21 refuses, a return no ledger rule accepts. One
 * item per subject: setting it aside again with the same fingerprint changes nothing, a new
 * fingerprint (the record changed at its source) opens it again with the new data.
 */
export interface Isolation {
  readonly source: Actor;
  /** What is set aside, unique per source, e.g. `order:20784`, `returns:20784`, `return:62347`. */
  readonly subject: string;
  /** Of the data as it was set aside; a changed record has another. */
  readonly fingerprint: string;
  readonly reason: string;
  /** The data as received (bounded by the store). */
  readonly raw: string;
  /** Ids an operator, and a retry, need (e.g. `ap21OrderId`, `personId`, `orderNumber`). */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface StoredIsolation extends Isolation {
  /** When this fingerprint was set aside. */
  readonly since: string;
}

/**
 * Outside references that name one of our orders (and refunds), for senders that do not know our
 * order id: `order_number` (the Ap21 order number customers and Refundid use, as `orderNumberKey`
 * writes it), `refund` (our refund id, which providers echo back: PayPro's ACTION_REASON, EPG's
 * merchantTransactionId, Optty's refundReference) and `refundid_rma` (Refundid's `refundid_id`).
 */
export type ReferenceKind = 'order_number' | 'refund' | 'refundid_rma';

export interface ReferenceTarget {
  readonly orderId: string;
  readonly refundId?: string;
}

/** Orders and their refunds: the ledger and every refund's state, one item per order (docs/design.md §2.1). */
export interface OrdersPort {
  /** Opens an order once; an order with a `lookupKey` can then be found by it (`ReferenceKind` `order_number`). */
  putOrder(order: Order): Promise<{ created: boolean }>;
  getOrder(orderId: string): Promise<StoredOrder | undefined>;
  /**
   * Opens an order with its first refund already created and reserved, in one conditional write:
   * for a return whose order is not open yet, instead of open, read, create. When the order is
   * open already nothing is written; the answer then carries it (read by the failed write itself
   * where DynamoDB returns it) so the caller goes on with `createRefund` without a read.
   */
  openOrderWithRefund(order: Order, spec: NewRefund, now: string, audit: Audit): Promise<OpenWithRefund>;
  /** Creates a refund and reserves its claim in one conditional write. Retrying the same request is harmless. */
  createRefund(orderId: string, spec: NewRefund, now: string, audit: Audit): Promise<{ refund: Refund; created: boolean }>;
  /**
   * Applies one state-machine event with a write conditioned on the state it was planned from.
   * `snapshot` (the refund as the caller last read it) saves a read on the happy path; `schedule`
   * (with a snapshot) folds the outbox's reschedule into the same write when the order is still at
   * its version, and is left out (`scheduled: false`) when it is not.
   */
  applyEvent(
    orderId: string,
    refundId: string,
    event: RefundEvent,
    ctx: TransitionContext,
    audit: Audit,
    snapshot?: Refund,
    schedule?: Schedule,
  ): Promise<TransitionOutcome>;
  /** The order's whole timeline, oldest first: its audit items and the recent window on the order. */
  readTimeline(orderId: string): Promise<TimelineEntry[]>;
  /** Notes an Apace verification call and returns what the answer depends on, in one round trip. */
  recordVerification(orderId: string, refundId: string, now: string): Promise<VerificationView>;
  /**
   * Every order in the table, page by page. It reads the whole table (every item, billed in full):
   * for operator tools that must see every refund, never for a request or dispatch path.
   */
  scanOrders(options?: ScanOptions): AsyncIterable<StoredOrder>;
}

/** Outside ids that name one of our orders or refunds. */
export interface ReferencesPort {
  /** The order holding the refund with this id (from its `refund` reference; an empty list when none). */
  findRefundOrders(refundId: string): Promise<string[]>;
  /**
   * Records that `ref` names `target`, in one round trip. Write it before anything can be looked up
   * by it. Idempotent, and the first target recorded stays: the answer is the target on record, so
   * a caller sees a clash instead of overwriting it.
   */
  linkReference(kind: ReferenceKind, ref: string, target: ReferenceTarget, now: string): Promise<ReferenceTarget>;
  /**
   * Moves a reference from the refund it names to another of the same order, only while it still
   * names `from` (and, with `linkedBefore`, was linked no later than that): true when moved. For a
   * link its owner proved stale; the first-target-wins rule of `linkReference` holds otherwise.
   */
  relinkReference(kind: ReferenceKind, ref: string, from: ReferenceTarget, to: ReferenceTarget, now: string, linkedBefore?: string): Promise<boolean>;
  findReference(kind: ReferenceKind, ref: string): Promise<ReferenceTarget | undefined>;
}

/** Inbound messages as received: kept before they are acknowledged, and kept when they changed nothing. */
export interface InboxPort {
  /** Keeps an inbound message that changed nothing (duplicate or late), once per key. */
  recordInbound(orderId: string, record: InboundRecord, now: string): Promise<{ stored: boolean }>;
  /** The inbound messages kept for an order, oldest first. */
  listInbound(orderId: string): Promise<StoredInbound[]>;
  /** Keeps an authenticated inbound message that names no order we know, once per key. */
  recordUnmatchedInbound(record: InboundRecord, now: string): Promise<{ stored: boolean }>;
  /**
   * Keeps an inbound message as pending, once per source and key, before it is acknowledged. A
   * second call with the same key stores nothing and returns what was kept first.
   */
  recordPendingInbound(
    orderId: string,
    record: InboundRecord & { readonly attributes: Readonly<Record<string, string>> },
    now: string,
  ): Promise<{ stored: boolean; record: PendingInbound }>;
  /** Pending messages of a source received before `receivedBefore`, oldest first, up to `limit`. */
  findPendingInbound(source: Actor, receivedBefore: string, limit: number): Promise<PendingInbound[]>;
  /** Marks a pending message processed or failed; it is then no longer found as pending. */
  settleInbound(orderId: string, source: Actor, key: string, status: Exclude<InboundStatus, 'pending'>, note: string, now: string): Promise<void>;
}

/** An order in the outbox and the time its earliest work fell due. */
export interface DueOrder {
  readonly orderId: string;
  readonly dueAt: string;
}

/** The outbox: orders with outbound work due, as the dispatcher and sweeper find them. */
export interface OutboxPort {
  /** Orders whose earliest due time has come (the outbox), up to `limit`. */
  findDueOrders(now: string, limit: number): Promise<string[]>;
  /** The same, each with the due time it is listed under, longest due first. */
  findDue(now: string, limit: number): Promise<DueOrder[]>;
  /**
   * Sets when the order next needs attention (undefined: nothing to do), only if the order is still
   * at `version`; false when it changed meanwhile and the caller must look again.
   */
  reschedule(orderId: string, version: number, dueAt: string | undefined): Promise<boolean>;
}

/** Records set aside for an operator (docs/design.md §2.5). */
export interface IsolationsPort {
  /** Sets a record aside; `opened` is false when it already was, with the same fingerprint. */
  isolate(isolation: Isolation, now: string): Promise<{ opened: boolean }>;
  /** Ends an isolation once its record was processed; only if it still has `fingerprint`. */
  releaseIsolation(source: Actor, subject: string, fingerprint: string): Promise<boolean>;
  getIsolation(source: Actor, subject: string): Promise<StoredIsolation | undefined>;
  /** The records of a source set aside now, oldest first. Reads one partition: for a run's start and for operators. */
  listIsolations(source: Actor): Promise<StoredIsolation[]>;
}

/** How far each poller has read its source. */
export interface WatermarksPort {
  getWatermark(name: string): Promise<Watermark | undefined>;
  /**
   * Moves a watermark from `expected` (undefined: none yet) to `next`, only if nobody moved it
   * meanwhile and never backwards; false when another writer got there first.
   */
  advanceWatermark(
    name: string,
    expected: Watermark | undefined,
    next: { readonly at: string; readonly cursor?: WatermarkCursor },
    now: string,
  ): Promise<boolean>;
}

/**
 * The port the application speaks to: every concern's port in one, so a service takes one store.
 * `DynamoOrderStore` composes the DynamoDB adapters (lambdas/store/dynamodb/); only they, through
 * lambdas/store/keys.ts, know the table's keys.
 */
export interface OrderStore extends OrdersPort, ReferencesPort, InboxPort, OutboxPort, IsolationsPort, WatermarksPort {}

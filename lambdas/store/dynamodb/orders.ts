import { createHash } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { emitMetric } from '../../commons/metrics';
import { logger } from '../../commons/logger';
import { OrderNotFoundError, RefundNotFoundError } from '../../domain/errors';
import { LEDGER_DELTAS, addRefund, newRefundRecord, own, validateRefundShape, type NewRefund, type Order } from '../../domain/order';
import {
  RECEIPT_OVERDUE_REASON,
  RECEIPT_WAIVED_REF,
  RETURN_RECEIVED_REF,
  SETTLED_ELSEWHERE_AT_REF,
  SETTLED_ELSEWHERE_REF,
  SETTLED_ELSEWHERE_WAIVED_REF,
  WORK_STATES,
  awaitsApaceConfirmation,
  apaceQuietCutoff,
  guardsOf,
  planTransition,
  refundDueAt,
  ruleFor,
  type LedgerEffect,
  type Refund,
  type RefundClaim,
  type RefundEvent,
  type TransitionContext,
  type VerificationView,
} from '../../domain/refund';
import { ExpressionBuilder } from '../expression';
import { AUDIT_SORT_PREFIX, ORDER_SORT_KEY, auditKey, dueShard, inboxSortKey, orderKey, orderPartition } from '../keys';
import {
  StoreContentionError,
  StoreScanLimitError,
  type Audit,
  type OpenWithRefund,
  type OrdersPort,
  type ReferencesPort,
  type ScanOptions,
  type Schedule,
  type StoredOrder,
  type TimelineEntry,
  type TransitionOutcome,
} from '../order-store';
import { TABLE } from '../table';
import {
  KEPT_FOR_TIMELINE,
  SCAN_MAX_PAGES,
  SCAN_PAGE_SIZE,
  boundedRaw,
  conditionally,
  inboxExpiry,
  isConditionFailure,
  type TableAccess,
} from './table-access';

/** Conditional writes refused by a racing writer, re-planned from a fresh read, before giving up (503). */
const MAX_ATTEMPTS = 8;

/**
 * The order item's timeline keeps the last `TIMELINE_WINDOW` entries; once it holds `TIMELINE_SLACK`
 * more, the oldest move to an audit item beside the order (docs/design.md §2.1), so the item's size
 * does not grow with its history and a move costs two writes every `TIMELINE_SLACK` changes.
 */
export const TIMELINE_WINDOW = 40;
export const TIMELINE_SLACK = 20;
/** A timeline note is cut here: the detail (provider answers, raw messages) lives elsewhere. */
const NOTE_LIMIT = 200;
/** The size from which an order is compacted before writing on (DynamoDB's item limit is 400 KB). */
const NEAR_LIMIT_BYTES = 360 * 1024;

/** A write DynamoDB refused because the item would pass its 400 KB limit. */
class OrderItemTooLargeError extends Error {
  override readonly name = 'OrderItemTooLargeError';
}

function isSizeRefusal(error: unknown): boolean {
  const { name, message } = (error ?? {}) as { name?: string; message?: string };
  return name === 'ValidationException' && /maximum allowed size/i.test(message ?? '');
}

function toStoredOrder(item: Record<string, unknown>): StoredOrder {
  const { [TABLE.partitionKey]: _pk, [TABLE.sortKey]: _sk, dueShard: _shard, updatedAt: _updated, timelineArchived: _archived, ...order } = item;
  return order as unknown as StoredOrder;
}

function boundedNote(note: string | undefined): string | undefined {
  if (note === undefined || note.length <= NOTE_LIMIT) return note;
  return `${note.slice(0, NOTE_LIMIT)}…`;
}

function timelineEntry(
  at: string,
  event: string,
  audit: Audit,
  refund?: { id: string; from?: Refund['state']; to?: Refund['state'] },
  inbox?: string,
): TimelineEntry {
  const note = boundedNote(audit.note);
  return {
    at,
    event,
    actor: audit.actor,
    ...(refund && { refundId: refund.id }),
    ...(refund?.from && { from: refund.from }),
    ...(refund?.to && { to: refund.to }),
    ...(note !== undefined && { note }),
    ...(inbox !== undefined && { inbox }),
  };
}

/** Adds the ledger movement for a claim: available/reserved/refunded per line and per payment. */
function addLedgerMovement(expr: ExpressionBuilder, sets: string[], claim: RefundClaim, effect: LedgerEffect | 'reserve' | 'record_paid'): void {
  if (effect === 'hold') return;
  const deltas = LEDGER_DELTAS[effect];
  const move = (base: string[], fields: [string, string, string], amount: number) => {
    fields.forEach((field, i) => {
      const delta = deltas[i]! * amount;
      if (delta === 0) return;
      const path = expr.path(...base, field);
      sets.push(`${path} = ${path} + ${expr.value(delta)}`);
    });
  };
  for (const [lineId, units] of Object.entries(claim.lines)) move(['lines', lineId], ['available', 'reserved', 'refunded'], units);
  move(['payments', claim.paymentId], ['availableMinor', 'reservedMinor', 'refundedMinor'], claim.amount.minor);
}

/**
 * Orders and their refunds, one item per order: the ledger, every refund's state and the
 * timeline. Every reservation and transition is one UpdateItem whose condition is the invariant
 * (units and money available, the refund still in the state it was planned from).
 */
export class DynamoOrders implements OrdersPort {
  constructor(
    private readonly table: TableAccess,
    private readonly references: ReferencesPort,
  ) {}

  async putOrder(order: Order): Promise<{ created: boolean }> {
    // The order's `lookupKey` (if any) is its own attribute, indexed by the lookup index: no reference item.
    const item = {
      ...orderKey(order.orderId),
      ...order,
      timeline: [timelineEntry(order.createdAt, 'order_opened', { actor: 'ap21' })],
      updatedAt: order.createdAt,
    };
    const created = await conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        }),
      ),
    );
    return { created };
  }

  async openOrderWithRefund(order: Order, spec: NewRefund, now: string, audit: Audit): Promise<OpenWithRefund> {
    validateRefundShape(spec);
    // The domain model decides (units and money available) on the order as it will be written.
    const { order: withRefund, refund } = addRefund(order, spec, now);
    const inbox = await this.keepRaw(order.orderId, audit, now);
    const timeline = [
      timelineEntry(order.createdAt, 'order_opened', { actor: 'ap21' }),
      timelineEntry(now, 'refund_created', audit, { id: refund.id, to: refund.state }, inbox),
    ];
    // The order's only refund: its due time is the order's (now for work, the end of a wait for a receipt).
    const dueAt = refundDueAt(refund);
    const due = dueAt !== undefined ? { [TABLE.dueIndex.sortKey]: dueAt, [TABLE.dueIndex.partitionKey]: dueShard(order.orderId) } : {};
    const item = { ...orderKey(order.orderId), ...withRefund, timeline, timelineArchived: 0, updatedAt: now, ...due };
    try {
      await this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          // DynamoDB (and DynamoDB Local) answer a refused put with the item that is there; dynalite does not.
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { opened: true, order: toStoredOrder(item), refund };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = (error as { Item?: Record<string, AttributeValue> }).Item;
      return { opened: false, ...(existing && { existing: toStoredOrder(unmarshall(existing)) }) };
    }
  }

  async getOrder(orderId: string): Promise<StoredOrder | undefined> {
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: orderKey(orderId), ConsistentRead: true }));
    return Item ? toStoredOrder(Item) : undefined;
  }

  async createRefund(orderId: string, spec: NewRefund, now: string, audit: Audit): Promise<{ refund: Refund; created: boolean }> {
    validateRefundShape(spec);
    const inbox = await this.keepRaw(orderId, audit, now);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const expr = new ExpressionBuilder();
      const sets: string[] = [];
      const conditions = [
        `attribute_exists(${expr.path(TABLE.partitionKey)})`,
        `${expr.path('currency')} = ${expr.value(spec.amount.currency)}`,
        `attribute_not_exists(${expr.path('refunds', spec.refundId)})`,
      ];
      for (const [lineId, units] of Object.entries(spec.lines)) {
        conditions.push(`${expr.path('lines', lineId, 'available')} >= ${expr.value(units)}`);
      }
      conditions.push(`${expr.path('payments', spec.paymentId, 'availableMinor')} >= ${expr.value(spec.amount.minor)}`);

      const refund = newRefundRecord(orderId, spec, now);
      sets.push(`${expr.path('refunds', refund.id)} = ${expr.value(refund)}`);
      addLedgerMovement(expr, sets, spec, spec.alreadyPaid ? 'record_paid' : 'reserve');
      this.addBookkeeping(
        expr,
        sets,
        orderId,
        now,
        timelineEntry(now, 'refund_created', audit, { id: refund.id, to: refund.state }, inbox),
        // A refund awaiting its return's receipt is due at the end of the wait, a Refundid RMA when its outcome is
        // overdue; due now is never later than that, and the dispatcher's reschedule then sets the order's due time
        // from all its refunds.
        WORK_STATES.has(refund.state) || refund.state === 'awaiting_receipt' || refund.state === 'refundid_pending',
      );
      try {
        const written = await this.sized(orderId, () => this.update(orderId, expr, sets, conditions));
        if (written === 'too_large') throw new OrderItemTooLargeError(`order ${orderId} is at DynamoDB's item size limit: refund ${refund.id} cannot be added`);
        return { refund, created: true };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      // Explain the refusal from the current item; addRefund throws the precise domain error.
      const current = await this.getOrder(orderId);
      if (!current) throw new OrderNotFoundError(`order ${orderId} not found`);
      const outcome = addRefund(current, spec, now);
      if (!outcome.created) {
        return { refund: outcome.refund, created: false };
      }
    }
    throw new StoreContentionError(`refund ${spec.refundId}: order ${orderId} kept changing`);
  }

  async applyEvent(
    orderId: string,
    refundId: string,
    event: RefundEvent,
    ctx: TransitionContext,
    audit: Audit,
    snapshot?: Refund,
    schedule?: Schedule,
  ): Promise<TransitionOutcome> {
    const inbox = await this.keepRaw(orderId, audit, ctx.now);
    // With a caller's snapshot the caller decided; a lost race is reported, never re-decided here.
    // Without one, the store reads and decides, and may retry against fresh reads.
    const attempts = snapshot ? 1 : MAX_ATTEMPTS;
    let observed = snapshot;
    for (let attempt = 0; attempt < attempts; attempt++) {
      observed ??= await this.currentRefund(orderId, refundId);
      const plan = planTransition(observed, event, ctx);
      if (!plan.ok) return { applied: false, why: plan.why, refund: observed };
      const from = observed;
      const write = (folded?: Schedule) =>
        this.sized(orderId, () => this.writeTransition(orderId, from, event, plan.refund, plan.ledger, ctx, audit, inbox, folded));
      let written = await write(snapshot && schedule);
      if (written === 'too_large') return this.reviewForSize(orderId, from, event, ctx);
      if (written) return { applied: true, refund: plan.refund, ...(snapshot && schedule && { scheduled: true }) };
      // Refused with the order's version in the condition: the transition alone may still apply.
      if (snapshot && schedule) {
        written = await write();
        if (written === 'too_large') return this.reviewForSize(orderId, from, event, ctx);
        if (written) return { applied: true, refund: plan.refund, scheduled: false };
      }
      observed = undefined;
    }
    if (snapshot) return { applied: false, why: 'superseded', refund: await this.currentRefund(orderId, refundId) };
    throw new StoreContentionError(`refund ${refundId}: ${event} kept losing to concurrent changes`);
  }

  async readTimeline(orderId: string): Promise<TimelineEntry[]> {
    // The order first: every audit item below its `timelineArchived` was written before it moved there.
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: orderKey(orderId), ConsistentRead: true }));
    if (!Item) throw new OrderNotFoundError(`order ${orderId} not found`);
    const archived = Number(Item.timelineArchived ?? 0);
    const entries: TimelineEntry[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; archived > 0 && page < SCAN_MAX_PAGES; page++) {
      const result = await this.table.db.send(
        new QueryCommand({
          TableName: this.table.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :audit)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
          ExpressionAttributeValues: { ':pk': orderPartition(orderId), ':audit': AUDIT_SORT_PREFIX },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const audit of result.Items ?? []) {
        // Items may overlap (a move retried with more entries): each entry is taken once, by its index.
        (audit.entries as TimelineEntry[]).forEach((entry, i) => {
          const index = Number(audit.first) + i;
          if (index === entries.length && index < archived) entries.push(entry);
        });
      }
      start = result.LastEvaluatedKey;
      if (!start) break;
    }
    if (entries.length < archived) throw new Error(`order ${orderId}: audit items hold ${entries.length} of ${archived} moved timeline entries`);
    return [...entries, ...((Item.timeline as TimelineEntry[] | undefined) ?? [])];
  }

  async recordVerification(orderId: string, refundId: string, now: string): Promise<VerificationView> {
    const expr = new ExpressionBuilder();
    const field = (name: string) => expr.path('refunds', refundId, name);
    const count = field('verifications');
    // Re-assigning state, channel and offerExpiresAt to themselves makes UPDATED_NEW return
    // exactly the fields the answer needs, without a second round trip or the whole item.
    const sets = [
      `${field('lastVerifiedAt')} = ${expr.value(now)}`,
      `${count} = if_not_exists(${count}, ${expr.value(0)}) + ${expr.value(1)}`,
      ...['state', 'channel', 'offerExpiresAt'].map((name) => `${field(name)} = ${field(name)}`),
    ];
    try {
      const result = await this.table.db.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: orderKey(orderId),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_exists(${expr.path('refunds', refundId)})`,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      const view = (result.Attributes?.refunds as Record<string, VerificationView> | undefined)?.[refundId];
      if (!view) throw new Error('verification update returned no refund');
      return { state: view.state, channel: view.channel, offerExpiresAt: view.offerExpiresAt };
    } catch (error) {
      if (isConditionFailure(error)) throw new RefundNotFoundError(`refund ${refundId} not found on order ${orderId}`);
      throw error;
    }
  }

  async *scanOrders(options: ScanOptions = {}): AsyncIterable<StoredOrder> {
    const maxPages = options.maxPages ?? SCAN_MAX_PAGES;
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < maxPages; page++) {
      const result = await this.table.db.send(
        new ScanCommand({
          TableName: this.table.tableName,
          FilterExpression: '#sk = :order',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey },
          ExpressionAttributeValues: { ':order': ORDER_SORT_KEY },
          Limit: options.pageSize ?? SCAN_PAGE_SIZE,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) yield toStoredOrder(item);
      start = result.LastEvaluatedKey;
      if (!start) return;
    }
    throw new StoreScanLimitError(`stopped after ${maxPages} pages of the table`);
  }

  private async currentRefund(orderId: string, refundId: string): Promise<Refund> {
    const order = await this.getOrder(orderId);
    if (!order) throw new OrderNotFoundError(`order ${orderId} not found`);
    const refund = own(order.refunds, refundId);
    if (!refund) throw new RefundNotFoundError(`refund ${refundId} not found on order ${orderId}`);
    return refund;
  }

  /** One conditional UpdateItem: true if written, false if the refund was no longer as observed. */
  private writeTransition(
    orderId: string,
    observed: Refund,
    event: RefundEvent,
    next: Refund,
    ledger: LedgerEffect,
    ctx: TransitionContext,
    audit: Audit,
    inbox?: string,
    schedule?: Schedule,
  ): Promise<boolean> {
    const expr = new ExpressionBuilder();
    const refundPath = (...field: string[]) => expr.path('refunds', observed.id, ...field);
    // State, channel and attempt count: two dispatchers claiming the same work cannot both win.
    const conditions = [
      `${refundPath('state')} = ${expr.value(observed.state)}`,
      `${refundPath('channel')} = ${expr.value(observed.channel)}`,
      `${refundPath('attempts')} = ${expr.value(observed.attempts)}`,
    ];
    const guards = guardsOf(ruleFor(event));
    // A path registers its names: built only where a condition uses it (DynamoDB refuses unused names).
    const mark = () => refundPath('refs', SETTLED_ELSEWHERE_REF);
    for (const guard of guards) {
      if (guard === 'apace_quiet') {
        const verified = refundPath('lastVerifiedAt');
        conditions.push(
          `(attribute_not_exists(${verified}) OR ${verified} < ${expr.value(apaceQuietCutoff(ctx))} OR ${verified} >= ${refundPath('offerExpiresAt')})`,
        );
      } else if (guard === 'unconfirmed') {
        conditions.push(`attribute_not_exists(${refundPath('confirmedAt')})`);
      } else if (guard === 'receipt_awaited' || (guard === 'apace_payable_in_review' && observed.channel !== 'apace')) {
        // The channel is already held to the observed one: off Apace, only a refund still awaiting its receipt.
        conditions.push(
          `(${refundPath('state')} = ${expr.value('awaiting_receipt')} OR begins_with(${refundPath('reason')}, ${expr.value(RECEIPT_OVERDUE_REASON)}))`,
        );
      } else if (guard === 'not_settled_elsewhere' || (guard === 'reversal_owed' && observed.channel === 'reversal')) {
        // As settledElsewhere(): no mark, or an operator sent the refund on over this very mark.
        const [markedAt, waived] = [refundPath('refs', SETTLED_ELSEWHERE_AT_REF), refundPath('refs', SETTLED_ELSEWHERE_WAIVED_REF)];
        conditions.push(`(attribute_not_exists(${mark()}) OR attribute_not_exists(${markedAt}) OR ${waived} = ${markedAt})`);
      } else if (guard === 'mark_as_seen') {
        const seen = observed.refs[SETTLED_ELSEWHERE_REF];
        conditions.push(seen === undefined ? `attribute_not_exists(${mark()})` : `${mark()} = ${expr.value(seen)}`);
      } else if (guard === 'receipt_unseen') {
        conditions.push(`attribute_not_exists(${refundPath('refs', RETURN_RECEIVED_REF)})`, `attribute_not_exists(${refundPath('refs', RECEIPT_WAIVED_REF)})`);
      } else if (guard === 'due') {
        conditions.push(`(attribute_not_exists(${refundPath('nextAttemptAt')}) OR ${refundPath('nextAttemptAt')} <= ${expr.value(ctx.now)})`);
      }
    }
    const sets = [`${refundPath('updatedAt')} = ${expr.value(next.updatedAt)}`];
    const removes: string[] = [];
    if (next.state !== observed.state) sets.push(`${refundPath('state')} = ${expr.value(next.state)}`);
    if (next.attempts !== observed.attempts) sets.push(`${refundPath('attempts')} = ${expr.value(next.attempts)}`);
    if (next.channel !== observed.channel) sets.push(`${refundPath('channel')} = ${expr.value(next.channel)}`);
    if (next.offerExpiresAt !== observed.offerExpiresAt) sets.push(`${refundPath('offerExpiresAt')} = ${expr.value(next.offerExpiresAt)}`);
    for (const stamp of ['paidAt', 'confirmedAt', 'reason', 'nextAttemptAt'] as const) {
      const value = stamp === 'reason' ? boundedNote(next[stamp]) : next[stamp];
      if (value !== undefined && value !== observed[stamp]) sets.push(`${refundPath(stamp)} = ${expr.value(value)}`);
      if (value === undefined && observed[stamp] !== undefined) removes.push(refundPath(stamp));
    }
    for (const [name, value] of Object.entries(next.refs)) {
      if (observed.refs[name] === value) continue;
      sets.push(`${refundPath('refs', name)} = ${expr.value(value)}`);
      // A reference another writer set since the snapshot is never overwritten: that write loses instead.
      const seen = observed.refs[name];
      conditions.push(seen === undefined ? `attribute_not_exists(${refundPath('refs', name)})` : `${refundPath('refs', name)} = ${expr.value(seen)}`);
    }
    addLedgerMovement(expr, sets, observed, ledger);
    const entry = timelineEntry(ctx.now, event, audit, { id: observed.id, from: observed.state, to: next.state }, inbox);
    if (schedule) {
      // The order's due time as the caller computed it from the order at this version.
      conditions.push(`${expr.path('version')} = ${expr.value(schedule.version)}`);
      const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
      if (schedule.dueAt === undefined) removes.push(expr.path(due), expr.path(shard));
      else sets.push(`${expr.path(due)} = ${expr.value(schedule.dueAt)}`, `${expr.path(shard)} = ${expr.value(dueShard(orderId))}`);
    }
    this.addBookkeeping(expr, sets, orderId, ctx.now, entry, !schedule && (WORK_STATES.has(next.state) || awaitsApaceConfirmation(next)));
    return conditionally(() => this.update(orderId, expr, sets, conditions, removes));
  }

  /**
   * Runs a write on the order item; refused for size, compacts the order (its whole timeline into
   * audit items) and tries once more. 'too_large' when even that does not fit.
   */
  private async sized<T>(orderId: string, write: () => Promise<T>): Promise<T | 'too_large'> {
    try {
      return await write();
    } catch (error) {
      if (!isSizeRefusal(error)) throw error;
    }
    await this.compact(orderId, undefined, true);
    try {
      return await write();
    } catch (error) {
      if (!isSizeRefusal(error)) throw error;
      return 'too_large';
    }
  }

  /**
   * A transition refused for size even after compaction: the refund goes to manual review with
   * that reason (a small write that frees nothing but needs almost nothing), instead of every
   * retry failing the same way (docs/design.md §2.1).
   */
  private async reviewForSize(orderId: string, observed: Refund, event: RefundEvent, ctx: TransitionContext): Promise<TransitionOutcome> {
    const reason = `order item at DynamoDB's 400 KB item limit: ${event} could not be written`;
    // Only the reason: what the refused write carried (references, a due time) is what did not fit.
    const plan = planTransition(observed, 'review_required', { now: ctx.now, claimWindowMs: ctx.claimWindowMs, reason });
    if (!plan.ok) throw new OrderItemTooLargeError(`order ${orderId}: ${reason}, and refund ${observed.id} (${observed.state}) cannot go to manual review`);
    const written = await this.sized(orderId, () =>
      this.writeTransition(orderId, observed, 'review_required', plan.refund, plan.ledger, ctx, { actor: 'operator', note: reason }),
    );
    if (written === 'too_large') throw new OrderItemTooLargeError(`order ${orderId}: ${reason}, nor the move to manual review`);
    if (!written) return { applied: false, why: 'superseded', refund: await this.currentRefund(orderId, observed.id) };
    logger.error('refund needs manual review', { order_id: orderId, refund_id: observed.id, reason });
    emitMetric('RefundsInManualReview', 1);
    return { applied: false, why: 'superseded', refund: plan.refund };
  }

  /**
   * Keeps the raw inbound message that caused a change in an inbox item of the order's partition
   * (with TTL, once per sender and content), and answers its sort key for the timeline entry.
   */
  private async keepRaw(orderId: string, audit: Audit, now: string): Promise<string | undefined> {
    if (audit.raw === undefined) return undefined;
    // Keyed on the content as the services key what they keep: a message they kept already is not kept twice.
    const sortKey = inboxSortKey(audit.actor, createHash('sha256').update(audit.raw).digest('hex'));
    await conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: {
            [TABLE.partitionKey]: orderPartition(orderId),
            [TABLE.sortKey]: sortKey,
            receivedAt: now,
            source: audit.actor,
            note: boundedNote(audit.note) ?? '',
            // Kept before the change is written: should the change not apply, the service's own
            // record of the message (`recordInbound`, same key) replaces this one with its note.
            kept: KEPT_FOR_TIMELINE,
            raw: boundedRaw(audit.raw),
            [TABLE.ttlAttribute]: inboxExpiry(now),
          },
          ConditionExpression: 'attribute_not_exists(#sk)',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey },
        }),
      ),
    );
    return sortKey;
  }

  /**
   * Moves the oldest timeline entries of the order to an audit item: all but `TIMELINE_WINDOW`, or
   * all of them when `everything` (the order nears the item limit). The audit item is written
   * first and only ever grows, then the entries leave the order in one write conditioned on how
   * many had moved before, so a crash or a racing mover loses and duplicates nothing.
   */
  private async compact(orderId: string, item?: Record<string, unknown>, everything = false): Promise<void> {
    if (!item) {
      const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: orderKey(orderId), ConsistentRead: true }));
      if (!Item) return;
      item = Item;
    }
    const timeline = (item.timeline as TimelineEntry[] | undefined) ?? [];
    const move = everything ? timeline.length : timeline.length - TIMELINE_WINDOW;
    if (move <= 0) return;
    const first = Number(item.timelineArchived ?? 0);
    const stored = await conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...auditKey(orderId, first), first, count: move, entries: timeline.slice(0, move) },
          ConditionExpression: 'attribute_not_exists(#sk) OR #count < :count',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey, '#count': 'count' },
          ExpressionAttributeValues: { ':count': move },
        }),
      ),
    );
    if (!stored) return;
    const expr = new ExpressionBuilder();
    const archived = expr.path('timelineArchived');
    const list = expr.path('timeline');
    // Highest index first: DynamoDB reads every index against the list before the update, dynalite
    // removes one after the other (docs/design.md §2.1), and in this order both remove the same entries.
    const removes = Array.from({ length: move }, (_, i) => `${list}[${move - 1 - i}]`);
    const condition = first === 0 ? `(attribute_not_exists(${archived}) OR ${archived} = ${expr.value(0)})` : `${archived} = ${expr.value(first)}`;
    await conditionally(() =>
      this.table.db.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: orderKey(orderId),
          UpdateExpression: `SET ${archived} = ${expr.value(first + move)} REMOVE ${removes.join(', ')}`,
          ConditionExpression: `${condition} AND size(${list}) >= ${expr.value(move)}`,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
        }),
      ),
    );
  }

  private addBookkeeping(expr: ExpressionBuilder, sets: string[], orderId: string, now: string, entry: TimelineEntry, workDue: boolean): void {
    const timeline = expr.path('timeline');
    const version = expr.path('version');
    const archived = expr.path('timelineArchived');
    sets.push(
      `${timeline} = list_append(${timeline}, ${expr.value([entry])})`,
      `${version} = ${version} + ${expr.value(1)}`,
      // Assigned so that the write answers it: a compaction needs it, and it saves a read.
      `${archived} = if_not_exists(${archived}, ${expr.value(0)})`,
      `${expr.path('updatedAt')} = ${expr.value(now)}`,
    );
    if (workDue) {
      // "Due now" is never later than any other refund's due time, so it cannot hide earlier work.
      sets.push(`${expr.path(TABLE.dueIndex.sortKey)} = ${expr.value(now)}`, `${expr.path(TABLE.dueIndex.partitionKey)} = ${expr.value(dueShard(orderId))}`);
    }
  }

  /**
   * The conditional UpdateItem of every change. It answers what it changed (the timeline comes back
   * whole, bounded by its window) and what it cost: DynamoDB bills a write by the item's size, so
   * the consumed capacity tells, without reading the item, when the order nears the item limit.
   */
  private async update(
    orderId: string,
    expr: ExpressionBuilder,
    sets: string[],
    conditions: string[],
    removes: string[] = [],
  ): Promise<Record<string, unknown>> {
    const { Attributes = {}, ConsumedCapacity } = await this.table.db.send(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: orderKey(orderId),
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
        ReturnValues: 'UPDATED_NEW',
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const timeline = (Attributes.timeline as unknown[] | undefined) ?? [];
    const near = (ConsumedCapacity?.CapacityUnits ?? 0) * 1024 > NEAR_LIMIT_BYTES;
    if (near || timeline.length > TIMELINE_WINDOW + TIMELINE_SLACK) {
      // The change is written: a compaction that fails now is done by a later write.
      await this.compact(orderId, near ? undefined : Attributes, near).catch((error: unknown) =>
        logger.warn('timeline compaction failed', { order_id: orderId, error }),
      );
    }
    return Attributes;
  }
}

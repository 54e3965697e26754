import { GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { logger } from '../../commons/logger';
import { OrderNotFoundError, RefundNotFoundError } from '../../domain/errors';
import { LEDGER_DELTAS, addRefund, newRefundRecord, own, validateRefundShape, type NewRefund, type Order } from '../../domain/order';
import {
  WORK_STATES,
  awaitsApaceConfirmation,
  apaceQuietCutoff,
  planTransition,
  ruleFor,
  type LedgerEffect,
  type Refund,
  type RefundClaim,
  type RefundEvent,
  type TransitionContext,
  type VerificationView,
} from '../../domain/refund';
import { ExpressionBuilder } from '../expression';
import { ORDER_SORT_KEY, dueShard, orderKey } from '../keys';
import {
  StoreContentionError,
  StoreScanLimitError,
  type Audit,
  type OrdersPort,
  type ReferencesPort,
  type ScanOptions,
  type StoredOrder,
  type TimelineEntry,
  type TransitionOutcome,
} from '../order-store';
import { TABLE } from '../table';
import { SCAN_MAX_PAGES, SCAN_PAGE_SIZE, boundedRaw, conditionally, isConditionFailure, type TableAccess } from './table-access';

/** Conditional writes refused by a racing writer, re-planned from a fresh read, before giving up (503). */
const MAX_ATTEMPTS = 8;

function toStoredOrder(item: Record<string, unknown>): StoredOrder {
  const { [TABLE.partitionKey]: _pk, [TABLE.sortKey]: _sk, dueShard: _shard, updatedAt: _updated, ...order } = item;
  return order as unknown as StoredOrder;
}

function timelineEntry(at: string, event: string, audit: Audit, refund?: { id: string; from?: Refund['state']; to?: Refund['state'] }): TimelineEntry {
  const raw = boundedRaw(audit.raw);
  return {
    at,
    event,
    actor: audit.actor,
    ...(refund && { refundId: refund.id }),
    ...(refund?.from && { from: refund.from }),
    ...(refund?.to && { to: refund.to }),
    ...(audit.note !== undefined && { note: audit.note }),
    ...(raw !== undefined && { raw }),
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
    // The lookup goes first: a crash before the order is written leaves a reference to an order
    // that does not exist yet (read as "no such order"), and the retried put writes both.
    if (order.lookupKey !== undefined) {
      const linked = await this.references.linkReference('order_number', order.lookupKey, { orderId: order.orderId }, order.createdAt);
      if (linked.orderId !== order.orderId) {
        logger.error('order number already names another order; lookups find that one', { order_id: order.orderId, other_order_id: linked.orderId });
      }
    }
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

  async getOrder(orderId: string): Promise<StoredOrder | undefined> {
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: orderKey(orderId), ConsistentRead: true }));
    return Item ? toStoredOrder(Item) : undefined;
  }

  async createRefund(orderId: string, spec: NewRefund, now: string, audit: Audit): Promise<{ refund: Refund; created: boolean }> {
    validateRefundShape(spec);
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
        timelineEntry(now, 'refund_created', audit, { id: refund.id, to: refund.state }),
        WORK_STATES.has(refund.state),
      );
      try {
        await this.update(orderId, expr, sets, conditions);
        await this.putRefundLookup(refund.id, orderId, now);
        return { refund, created: true };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
      // Explain the refusal from the current item; addRefund throws the precise domain error.
      const current = await this.getOrder(orderId);
      if (!current) throw new OrderNotFoundError(`order ${orderId} not found`);
      const outcome = addRefund(current, spec, now);
      if (!outcome.created) {
        // A retried create also heals a lookup that a crash after the claim left unwritten.
        await this.putRefundLookup(outcome.refund.id, orderId, outcome.refund.createdAt);
        return { refund: outcome.refund, created: false };
      }
    }
    throw new StoreContentionError(`refund ${spec.refundId}: order ${orderId} kept changing`);
  }

  async applyEvent(orderId: string, refundId: string, event: RefundEvent, ctx: TransitionContext, audit: Audit, snapshot?: Refund): Promise<TransitionOutcome> {
    // With a caller's snapshot the caller decided; a lost race is reported, never re-decided here.
    // Without one, the store reads and decides, and may retry against fresh reads.
    const attempts = snapshot ? 1 : MAX_ATTEMPTS;
    let observed = snapshot;
    for (let attempt = 0; attempt < attempts; attempt++) {
      observed ??= await this.currentRefund(orderId, refundId);
      const plan = planTransition(observed, event, ctx);
      if (!plan.ok) return { applied: false, why: plan.why, refund: observed };
      if (await this.writeTransition(orderId, observed, event, plan.refund, plan.ledger, ctx, audit)) return { applied: true, refund: plan.refund };
      observed = undefined;
    }
    if (snapshot) return { applied: false, why: 'superseded', refund: await this.currentRefund(orderId, refundId) };
    throw new StoreContentionError(`refund ${refundId}: ${event} kept losing to concurrent changes`);
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
  ): Promise<boolean> {
    const expr = new ExpressionBuilder();
    const refundPath = (...field: string[]) => expr.path('refunds', observed.id, ...field);
    // State, channel and attempt count: two dispatchers claiming the same work cannot both win.
    const conditions = [
      `${refundPath('state')} = ${expr.value(observed.state)}`,
      `${refundPath('channel')} = ${expr.value(observed.channel)}`,
      `${refundPath('attempts')} = ${expr.value(observed.attempts)}`,
    ];
    const rule = ruleFor(event);
    if (rule.guard === 'apace_quiet') {
      const verified = refundPath('lastVerifiedAt');
      conditions.push(
        `(attribute_not_exists(${verified}) OR ${verified} < ${expr.value(apaceQuietCutoff(ctx))} OR ${verified} >= ${refundPath('offerExpiresAt')})`,
      );
    } else if (rule.guard === 'unconfirmed') {
      conditions.push(`attribute_not_exists(${refundPath('confirmedAt')})`);
    } else if (rule.guard === 'due') {
      conditions.push(`(attribute_not_exists(${refundPath('nextAttemptAt')}) OR ${refundPath('nextAttemptAt')} <= ${expr.value(ctx.now)})`);
    }
    const sets = [`${refundPath('updatedAt')} = ${expr.value(next.updatedAt)}`];
    const removes: string[] = [];
    if (next.state !== observed.state) sets.push(`${refundPath('state')} = ${expr.value(next.state)}`);
    if (next.attempts !== observed.attempts) sets.push(`${refundPath('attempts')} = ${expr.value(next.attempts)}`);
    if (next.channel !== observed.channel) sets.push(`${refundPath('channel')} = ${expr.value(next.channel)}`);
    for (const stamp of ['paidAt', 'confirmedAt', 'reason', 'nextAttemptAt'] as const) {
      const value = next[stamp];
      if (value !== undefined && value !== observed[stamp]) sets.push(`${refundPath(stamp)} = ${expr.value(value)}`);
      if (value === undefined && observed[stamp] !== undefined) removes.push(refundPath(stamp));
    }
    for (const [name, value] of Object.entries(next.refs)) {
      if (observed.refs[name] !== value) sets.push(`${refundPath('refs', name)} = ${expr.value(value)}`);
    }
    addLedgerMovement(expr, sets, observed, ledger);
    const entry = timelineEntry(ctx.now, event, audit, { id: observed.id, from: observed.state, to: next.state });
    this.addBookkeeping(expr, sets, orderId, ctx.now, entry, WORK_STATES.has(next.state) || awaitsApaceConfirmation(next));
    return conditionally(() => this.update(orderId, expr, sets, conditions, removes));
  }

  /** The refund id's reference: written once the refund exists; a clash means two orders claim one id. */
  private async putRefundLookup(refundId: string, orderId: string, createdAt: string): Promise<void> {
    const linked = await this.references.linkReference('refund', refundId, { orderId }, createdAt);
    if (linked.orderId !== orderId)
      logger.error('refund id already names a refund of another order', { refund_id: refundId, order_id: orderId, other_order_id: linked.orderId });
  }

  private addBookkeeping(expr: ExpressionBuilder, sets: string[], orderId: string, now: string, entry: TimelineEntry, workDue: boolean): void {
    const timeline = expr.path('timeline');
    const version = expr.path('version');
    sets.push(
      `${timeline} = list_append(${timeline}, ${expr.value([entry])})`,
      `${version} = ${version} + ${expr.value(1)}`,
      `${expr.path('updatedAt')} = ${expr.value(now)}`,
    );
    if (workDue) {
      // "Due now" is never later than any other refund's due time, so it cannot hide earlier work.
      sets.push(`${expr.path(TABLE.dueIndex.sortKey)} = ${expr.value(now)}`, `${expr.path(TABLE.dueIndex.partitionKey)} = ${expr.value(dueShard(orderId))}`);
    }
  }

  private async update(orderId: string, expr: ExpressionBuilder, sets: string[], conditions: string[], removes: string[] = []): Promise<void> {
    await this.table.db.send(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: orderKey(orderId),
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
      }),
    );
  }
}

import { createHash } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { logger } from '../commons/logger';
import { ap21OriginOf, orderNumberKey } from '../domain/ap21-origin';
import { OrderNotFoundError, RefundNotFoundError } from '../domain/errors';
import { LEDGER_DELTAS, addRefund, newRefundRecord, own, validateRefundShape, type NewRefund, type Order } from '../domain/order';
import {
  WORK_STATES,
  apaceQuietCutoff,
  planTransition,
  ruleFor,
  type LedgerEffect,
  type Refund,
  type RefundClaim,
  type RefundEvent,
  type TransitionContext,
  type VerificationView,
} from '../domain/refund';
import { ExpressionBuilder } from './expression';
import {
  StoreContentionError,
  StoreScanLimitError,
  type Actor,
  type Audit,
  type InboundRecord,
  type InboundStatus,
  type Isolation,
  type OrderStore,
  type PendingInbound,
  type ReferenceKind,
  type ReferenceTarget,
  type ScanOptions,
  type StoredInbound,
  type StoredIsolation,
  type StoredOrder,
  type TimelineEntry,
  type TransitionOutcome,
  type Watermark,
  type WatermarkCursor,
} from './order-store';
import { TABLE } from './table';

const ORDER_SK = 'ORDER';
const MAX_ATTEMPTS = 8;
const RAW_LIMIT = 16_384;
const INBOX_RETENTION_S = 90 * 24 * 3600;

const ORDER_PREFIX = 'ORDER#';
const INBOX_PREFIX = 'INBOX#';
const SCAN_PAGE_SIZE = 500;
const SCAN_MAX_PAGES = 10_000;

const orderKey = (orderId: string) => ({ [TABLE.partitionKey]: `${ORDER_PREFIX}${orderId}`, [TABLE.sortKey]: ORDER_SK });
const inboxKey = (orderId: string, source: Actor, key: string) => ({
  [TABLE.partitionKey]: `${ORDER_PREFIX}${orderId}`,
  [TABLE.sortKey]: `${INBOX_PREFIX}${source}#${key}`,
});
/** A reference item, alone in its partition: an outside id (order number, refund id, Refundid id) → our ids. */
const referenceKey = (kind: ReferenceKind, ref: string) => ({ [TABLE.partitionKey]: `REF#${kind}#${ref}`, [TABLE.sortKey]: 'REF' });
const watermarkKey = (name: string) => ({ [TABLE.partitionKey]: `WATERMARK#${name}`, [TABLE.sortKey]: 'WATERMARK' });
/** Isolations of a source share one partition, so an operator (and a poller run) lists them with one query. */
const isolationKey = (source: Actor, subject: string) => ({ [TABLE.partitionKey]: `ISOLATED#${source}`, [TABLE.sortKey]: subject });
/** Pending inbox records sit in the sparse due index under their own partition, never a dispatch shard. */
const pendingShard = (source: Actor) => `inbox#${source}`;

function toStoredOrder(item: Record<string, unknown>): StoredOrder {
  const { [TABLE.partitionKey]: _pk, [TABLE.sortKey]: _sk, dueShard: _shard, updatedAt: _updated, ...order } = item;
  return order as unknown as StoredOrder;
}

function dueShard(orderId: string): string {
  const bucket = createHash('sha1').update(orderId).digest().readUInt8(0) % TABLE.dueShards;
  return `due#${bucket}`;
}

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

function boundedRaw(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.length <= RAW_LIMIT) return raw;
  return `${raw.slice(0, RAW_LIMIT)}…[truncated ${raw.length - RAW_LIMIT} chars]`;
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

function isolationFrom(item: Record<string, unknown>): StoredIsolation {
  return {
    source: item.source as Actor,
    subject: String(item[TABLE.sortKey]),
    fingerprint: String(item.fingerprint),
    reason: typeof item.reason === 'string' ? item.reason : '',
    raw: typeof item.raw === 'string' ? item.raw : '',
    attributes: (item.attributes as Record<string, string> | undefined) ?? {},
    since: String(item.since),
  };
}

function referenceTarget(item: Record<string, unknown> | undefined): ReferenceTarget | undefined {
  if (typeof item?.orderId !== 'string') return undefined;
  return { orderId: item.orderId, ...(typeof item.refundId === 'string' && { refundId: item.refundId }) };
}

export class DynamoOrderStore implements OrderStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async putOrder(order: Order): Promise<{ created: boolean }> {
    // The order-number link goes first: a crash before the order is written leaves a link to an
    // order that does not exist yet (read as "no such order"), and the retried put writes both.
    const ap21 = ap21OriginOf(order);
    if (ap21) {
      const linked = await this.linkReference('order_number', orderNumberKey(ap21.orderNumber), { orderId: order.orderId }, order.createdAt);
      if (linked.orderId !== order.orderId) {
        logger.error('Ap21 order number already names another order; Refundid will find that one', { order_id: order.orderId, other_order_id: linked.orderId });
      }
    }
    const item = {
      ...orderKey(order.orderId),
      ...order,
      timeline: [timelineEntry(order.createdAt, 'order_opened', { actor: 'ap21' })],
      updatedAt: order.createdAt,
    };
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        }),
      );
      return { created: true };
    } catch (error) {
      if (isConditionFailure(error)) return { created: false };
      throw error;
    }
  }

  async getOrder(orderId: string): Promise<StoredOrder | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: orderKey(orderId), ConsistentRead: true }));
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

  private async currentRefund(orderId: string, refundId: string): Promise<Refund> {
    const order = await this.getOrder(orderId);
    if (!order) throw new OrderNotFoundError(`order ${orderId} not found`);
    const refund = own(order.refunds, refundId);
    if (!refund) throw new RefundNotFoundError(`refund ${refundId} not found on order ${orderId}`);
    return refund;
  }

  /** One conditional UpdateItem: true if written, false if the refund was no longer as observed. */
  private async writeTransition(
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
    this.addBookkeeping(expr, sets, orderId, ctx.now, entry, WORK_STATES.has(next.state));
    try {
      await this.update(orderId, expr, sets, conditions, removes);
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
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
      const result = await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
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

  recordInbound(orderId: string, record: InboundRecord, now: string): Promise<{ stored: boolean }> {
    return this.putInbound(`ORDER#${orderId}`, record, now);
  }

  private async putInbound(partition: string, record: InboundRecord, now: string): Promise<{ stored: boolean }> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            [TABLE.partitionKey]: partition,
            [TABLE.sortKey]: `${INBOX_PREFIX}${record.source}#${record.key}`,
            receivedAt: now,
            source: record.source,
            note: record.note,
            raw: boundedRaw(record.raw),
            [TABLE.ttlAttribute]: Math.floor(Date.parse(now) / 1000) + INBOX_RETENTION_S,
          },
          ConditionExpression: 'attribute_not_exists(#sk)',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey },
        }),
      );
      return { stored: true };
    } catch (error) {
      if (isConditionFailure(error)) return { stored: false };
      throw error;
    }
  }

  async listInbound(orderId: string): Promise<StoredInbound[]> {
    const entries: StoredInbound[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < SCAN_MAX_PAGES; page++) {
      const result = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :inbox)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
          ExpressionAttributeValues: { ':pk': `${ORDER_PREFIX}${orderId}`, ':inbox': INBOX_PREFIX },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) {
        entries.push({
          receivedAt: String(item.receivedAt),
          source: item.source as Actor,
          note: String(item.note ?? ''),
          ...(typeof item.raw === 'string' && { raw: item.raw }),
        });
      }
      start = result.LastEvaluatedKey;
      if (!start) return entries.sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
    }
    throw new StoreScanLimitError(`order ${orderId} has more than ${SCAN_MAX_PAGES} pages of inbound records`);
  }

  async findRefundOrders(refundId: string): Promise<string[]> {
    const linked = await this.findReference('refund', refundId);
    return linked ? [linked.orderId] : [];
  }

  async *scanOrders(options: ScanOptions = {}): AsyncIterable<StoredOrder> {
    const maxPages = options.maxPages ?? SCAN_MAX_PAGES;
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < maxPages; page++) {
      const result = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#sk = :order',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey },
          ExpressionAttributeValues: { ':order': ORDER_SK },
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

  async linkReference(kind: ReferenceKind, ref: string, target: ReferenceTarget, now: string): Promise<ReferenceTarget> {
    // if_not_exists keeps the first target; ALL_NEW returns whichever is on record, in one call.
    const expr = new ExpressionBuilder();
    const keep = (field: string, value: string) => `${expr.path(field)} = if_not_exists(${expr.path(field)}, ${expr.value(value)})`;
    const sets = [keep('orderId', target.orderId), keep('linkedAt', now)];
    if (target.refundId !== undefined) sets.push(keep('refundId', target.refundId));
    const { Attributes } = await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: referenceKey(kind, ref),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return referenceTarget(Attributes) ?? target;
  }

  async findReference(kind: ReferenceKind, ref: string): Promise<ReferenceTarget | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: referenceKey(kind, ref), ConsistentRead: true }));
    return referenceTarget(Item);
  }

  async recordUnmatchedInbound(record: InboundRecord, now: string): Promise<{ stored: boolean }> {
    return this.putInbound(`INBOX#UNMATCHED#${record.source}`, record, now);
  }

  async findDueOrders(now: string, limit: number): Promise<string[]> {
    const { name, partitionKey, sortKey } = TABLE.dueIndex;
    const pages = await Promise.all(
      Array.from({ length: TABLE.dueShards }, (_, shard) =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: name,
            KeyConditionExpression: '#shard = :shard AND #due <= :now',
            ExpressionAttributeNames: { '#shard': partitionKey, '#due': sortKey },
            ExpressionAttributeValues: { ':shard': `due#${shard}`, ':now': now },
            Limit: limit,
          }),
        ),
      ),
    );
    const due = pages.flatMap((page) =>
      (page.Items ?? []).map((item) => ({ orderId: String(item[TABLE.partitionKey]).slice(ORDER_PREFIX.length), dueAt: String(item[sortKey]) })),
    );
    return due
      .sort((a, b) => a.dueAt.localeCompare(b.dueAt))
      .slice(0, limit)
      .map((entry) => entry.orderId);
  }

  async reschedule(orderId: string, version: number, dueAt: string | undefined): Promise<boolean> {
    const expr = new ExpressionBuilder();
    const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
    const update = dueAt
      ? `SET ${expr.path(due)} = ${expr.value(dueAt)}, ${expr.path(shard)} = ${expr.value(dueShard(orderId))}`
      : `REMOVE ${expr.path(due)}, ${expr.path(shard)}`;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: orderKey(orderId),
          UpdateExpression: update,
          ConditionExpression: `${expr.path('version')} = ${expr.value(version)}`,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async recordPendingInbound(
    orderId: string,
    record: InboundRecord & { readonly attributes: Readonly<Record<string, string>> },
    now: string,
  ): Promise<{ stored: boolean; record: PendingInbound }> {
    const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
    const pending: PendingInbound = { ...record, raw: boundedRaw(record.raw) ?? '', orderId, receivedAt: now, status: 'pending' };
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...inboxKey(orderId, record.source, record.key), ...pending, [shard]: pendingShard(record.source), [due]: now },
          ConditionExpression: 'attribute_not_exists(#sk)',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey },
        }),
      );
      return { stored: true, record: pending };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.getInbound(orderId, record.source, record.key);
    if (!existing) throw new Error(`inbox record ${record.source}/${record.key} vanished after a conditional write found it`);
    return { stored: false, record: existing };
  }

  async findPendingInbound(source: Actor, receivedBefore: string, limit: number): Promise<PendingInbound[]> {
    const { name, partitionKey, sortKey } = TABLE.dueIndex;
    const { Items = [] } = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: name,
        KeyConditionExpression: '#shard = :shard AND #due < :before',
        ExpressionAttributeNames: { '#shard': partitionKey, '#due': sortKey },
        ExpressionAttributeValues: { ':shard': pendingShard(source), ':before': receivedBefore },
        Limit: limit,
      }),
    );
    // The index holds keys only: read each record (a handful; pending records are rare).
    const records = await Promise.all(
      Items.map(async (item) => {
        const key: Record<string, unknown> = { [TABLE.partitionKey]: item[TABLE.partitionKey] as unknown, [TABLE.sortKey]: item[TABLE.sortKey] as unknown };
        const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
        return Item ? this.inboundFrom(Item) : undefined;
      }),
    );
    return records.filter((record): record is PendingInbound => record?.status === 'pending');
  }

  async settleInbound(orderId: string, source: Actor, key: string, status: Exclude<InboundStatus, 'pending'>, note: string, now: string): Promise<void> {
    const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
    await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: inboxKey(orderId, source, key),
        UpdateExpression: 'SET #status = :status, #note = :note, #settledAt = :now, #ttl = :ttl REMOVE #shard, #due',
        ConditionExpression: 'attribute_exists(#sk)',
        ExpressionAttributeNames: {
          '#status': 'status',
          '#note': 'note',
          '#settledAt': 'settledAt',
          '#ttl': TABLE.ttlAttribute,
          '#shard': shard,
          '#due': due,
          '#sk': TABLE.sortKey,
        },
        ExpressionAttributeValues: { ':status': status, ':note': note, ':now': now, ':ttl': Math.floor(Date.parse(now) / 1000) + INBOX_RETENTION_S },
      }),
    );
  }

  async isolate(isolation: Isolation, now: string): Promise<{ opened: boolean }> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...isolationKey(isolation.source, isolation.subject), ...isolation, raw: boundedRaw(isolation.raw) ?? '', since: now },
          ConditionExpression: 'attribute_not_exists(#sk) OR #fingerprint <> :fingerprint',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey, '#fingerprint': 'fingerprint' },
          ExpressionAttributeValues: { ':fingerprint': isolation.fingerprint },
        }),
      );
      return { opened: true };
    } catch (error) {
      if (isConditionFailure(error)) return { opened: false };
      throw error;
    }
  }

  async releaseIsolation(source: Actor, subject: string, fingerprint: string): Promise<boolean> {
    try {
      await this.db.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: isolationKey(source, subject),
          ConditionExpression: '#fingerprint = :fingerprint',
          ExpressionAttributeNames: { '#fingerprint': 'fingerprint' },
          ExpressionAttributeValues: { ':fingerprint': fingerprint },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async getIsolation(source: Actor, subject: string): Promise<StoredIsolation | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: isolationKey(source, subject), ConsistentRead: true }));
    return Item ? isolationFrom(Item) : undefined;
  }

  async listIsolations(source: Actor): Promise<StoredIsolation[]> {
    const found: StoredIsolation[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < SCAN_MAX_PAGES; page++) {
      const result = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          ExpressionAttributeValues: { ':pk': isolationKey(source, '')[TABLE.partitionKey] },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      found.push(...(result.Items ?? []).map(isolationFrom));
      start = result.LastEvaluatedKey;
      if (!start) return found.sort((a, b) => a.since.localeCompare(b.since));
    }
    throw new StoreScanLimitError(`more than ${SCAN_MAX_PAGES} pages of ${source} isolations`);
  }

  async getWatermark(name: string): Promise<Watermark | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: watermarkKey(name), ConsistentRead: true }));
    if (!Item) return undefined;
    return {
      name,
      at: String(Item.at),
      version: Number(Item.version),
      updatedAt: String(Item.updatedAt),
      ...(Item.cursor !== undefined && { cursor: Item.cursor as WatermarkCursor }),
    };
  }

  async advanceWatermark(
    name: string,
    expected: Watermark | undefined,
    next: { readonly at: string; readonly cursor?: WatermarkCursor },
    now: string,
  ): Promise<boolean> {
    if (expected && next.at < expected.at) throw new Error(`watermark ${name} cannot move back from ${expected.at} to ${next.at}`);
    const item = { ...watermarkKey(name), at: next.at, version: (expected?.version ?? 0) + 1, updatedAt: now, ...(next.cursor && { cursor: next.cursor }) };
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: expected ? '#version = :version AND #at <= :at' : 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: expected ? { '#version': 'version', '#at': 'at' } : { '#pk': TABLE.partitionKey },
          ...(expected && { ExpressionAttributeValues: { ':version': expected.version, ':at': next.at } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private async getInbound(orderId: string, source: Actor, key: string): Promise<PendingInbound | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: inboxKey(orderId, source, key), ConsistentRead: true }));
    return Item ? this.inboundFrom(Item) : undefined;
  }

  private inboundFrom(item: Record<string, unknown>): PendingInbound {
    return {
      orderId: String(item[TABLE.partitionKey]).slice('ORDER#'.length),
      source: item.source as Actor,
      key: String(item[TABLE.sortKey]).split('#').slice(2).join('#'),
      raw: typeof item.raw === 'string' ? item.raw : '',
      note: typeof item.note === 'string' ? item.note : '',
      receivedAt: String(item.receivedAt),
      status: (item.status as InboundStatus | undefined) ?? 'processed',
      attributes: (item.attributes as Record<string, string> | undefined) ?? {},
    };
  }

  /** The refund id's reference: written once the refund exists; a clash means two orders claim one id. */
  private async putRefundLookup(refundId: string, orderId: string, createdAt: string): Promise<void> {
    const linked = await this.linkReference('refund', refundId, { orderId }, createdAt);
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
    await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: orderKey(orderId),
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: conditions.join(' AND '),
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
      }),
    );
  }
}

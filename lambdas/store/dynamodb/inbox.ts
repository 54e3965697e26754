import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { INBOX_SORT_PREFIX, inboxKey, inboxKeyOf, inboxSortKey, orderIdOf, orderPartition, pendingShard, primaryKeyOf, unmatchedInboxPartition } from '../keys';
import {
  StoreScanLimitError,
  type Actor,
  type InboundRecord,
  type InboundStatus,
  type InboxPort,
  type PendingInbound,
  type StoredInbound,
} from '../order-store';
import { TABLE } from '../table';
import { KEPT_FOR_TIMELINE, SCAN_MAX_PAGES, boundedRaw, conditionally, inboxExpiry, type TableAccess } from './table-access';

function inboundFrom(item: Record<string, unknown>): PendingInbound {
  return {
    orderId: orderIdOf(item),
    source: item.source as Actor,
    key: inboxKeyOf(item),
    raw: typeof item.raw === 'string' ? item.raw : '',
    note: typeof item.note === 'string' ? item.note : '',
    receivedAt: String(item.receivedAt),
    status: (item.status as InboundStatus | undefined) ?? 'processed',
    attributes: (item.attributes as Record<string, string> | undefined) ?? {},
  };
}

/**
 * Inbound messages verbatim, one item per source and key in the order's partition (or the
 * unmatched partition of its source), removed by TTL after `INBOX_RETENTION_S`.
 */
export class DynamoInbox implements InboxPort {
  constructor(private readonly table: TableAccess) {}

  recordInbound(orderId: string, record: InboundRecord, now: string): Promise<{ stored: boolean }> {
    return this.putInbound(orderPartition(orderId), record, now);
  }

  recordUnmatchedInbound(record: InboundRecord, now: string): Promise<{ stored: boolean }> {
    return this.putInbound(unmatchedInboxPartition(record.source), record, now);
  }

  async listInbound(orderId: string): Promise<StoredInbound[]> {
    const entries: StoredInbound[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < SCAN_MAX_PAGES; page++) {
      const result = await this.table.db.send(
        new QueryCommand({
          TableName: this.table.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :inbox)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
          ExpressionAttributeValues: { ':pk': orderPartition(orderId), ':inbox': INBOX_SORT_PREFIX },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) {
        entries.push({
          key: inboxKeyOf(item),
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

  async recordPendingInbound(
    orderId: string,
    record: InboundRecord & { readonly attributes: Readonly<Record<string, string>> },
    now: string,
  ): Promise<{ stored: boolean; record: PendingInbound }> {
    const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
    const pending: PendingInbound = { ...record, raw: boundedRaw(record.raw) ?? '', orderId, receivedAt: now, status: 'pending' };
    const stored = await conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...inboxKey(orderId, record.source, record.key), ...pending, [shard]: pendingShard(record.source), [due]: now },
          ConditionExpression: 'attribute_not_exists(#sk)',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey },
        }),
      ),
    );
    if (stored) return { stored: true, record: pending };
    const existing = await this.getInbound(orderId, record.source, record.key);
    if (!existing) throw new Error(`inbox record ${record.source}/${record.key} vanished after a conditional write found it`);
    return { stored: false, record: existing };
  }

  async findPendingInbound(source: Actor, receivedBefore: string, limit: number): Promise<PendingInbound[]> {
    const { name, partitionKey, sortKey } = TABLE.dueIndex;
    const { Items = [] } = await this.table.db.send(
      new QueryCommand({
        TableName: this.table.tableName,
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
        const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: primaryKeyOf(item), ConsistentRead: true }));
        return Item ? inboundFrom(Item) : undefined;
      }),
    );
    return records.filter((record): record is PendingInbound => record?.status === 'pending');
  }

  async settleInbound(orderId: string, source: Actor, key: string, status: Exclude<InboundStatus, 'pending'>, note: string, now: string): Promise<void> {
    const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
    await this.table.db.send(
      new UpdateCommand({
        TableName: this.table.tableName,
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
        ExpressionAttributeValues: { ':status': status, ':note': note, ':now': now, ':ttl': inboxExpiry(now) },
      }),
    );
  }

  private async putInbound(partition: string, record: InboundRecord, now: string): Promise<{ stored: boolean }> {
    const stored = await conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: {
            [TABLE.partitionKey]: partition,
            [TABLE.sortKey]: inboxSortKey(record.source, record.key),
            receivedAt: now,
            source: record.source,
            note: record.note,
            raw: boundedRaw(record.raw),
            [TABLE.ttlAttribute]: inboxExpiry(now),
          },
          // Once per key; the same message kept before its change was tried takes this record's note.
          ConditionExpression: 'attribute_not_exists(#sk) OR #kept = :kept',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey, '#kept': 'kept' },
          ExpressionAttributeValues: { ':kept': KEPT_FOR_TIMELINE },
        }),
      ),
    );
    return { stored };
  }

  private async getInbound(orderId: string, source: Actor, key: string): Promise<PendingInbound | undefined> {
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: inboxKey(orderId, source, key), ConsistentRead: true }));
    return Item ? inboundFrom(Item) : undefined;
  }
}

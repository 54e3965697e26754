import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ExpressionBuilder } from '../expression';
import { orderIdOf, orderKey, referenceKey } from '../keys';
import { TABLE } from '../table';
import type { ReferenceKind, ReferenceTarget, ReferencesPort } from '../order-store';
import { conditionally, type TableAccess } from './table-access';

function referenceTarget(item: Record<string, unknown> | undefined): ReferenceTarget | undefined {
  if (typeof item?.orderId !== 'string') return undefined;
  return { orderId: item.orderId, ...(typeof item.refundId === 'string' && { refundId: item.refundId }) };
}

/** Outside ids → our ids, one reference item per id; the first target recorded owns it. */
export class DynamoReferences implements ReferencesPort {
  constructor(private readonly table: TableAccess) {}

  async findRefundOrders(refundId: string): Promise<string[]> {
    const linked = await this.findReference('refund', refundId);
    return linked ? [linked.orderId] : [];
  }

  async linkReference(kind: ReferenceKind, ref: string, target: ReferenceTarget, now: string): Promise<ReferenceTarget> {
    // if_not_exists keeps the first target; ALL_NEW returns whichever is on record, in one call.
    const expr = new ExpressionBuilder();
    const keep = (field: string, value: string) => `${expr.path(field)} = if_not_exists(${expr.path(field)}, ${expr.value(value)})`;
    const sets = [keep('orderId', target.orderId), keep('linkedAt', now)];
    if (target.refundId !== undefined) sets.push(keep('refundId', target.refundId));
    const { Attributes } = await this.table.db.send(
      new UpdateCommand({
        TableName: this.table.tableName,
        Key: referenceKey(kind, ref),
        UpdateExpression: `SET ${sets.join(', ')}`,
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return referenceTarget(Attributes) ?? target;
  }

  async relinkReference(kind: ReferenceKind, ref: string, from: ReferenceTarget, to: ReferenceTarget, now: string, linkedBefore?: string): Promise<boolean> {
    const expr = new ExpressionBuilder();
    const conditions = [`${expr.path('orderId')} = ${expr.value(from.orderId)}`, `${expr.path('refundId')} = ${expr.value(from.refundId ?? '')}`];
    if (linkedBefore !== undefined) conditions.push(`${expr.path('linkedAt')} <= ${expr.value(linkedBefore)}`);
    const sets = [`${expr.path('orderId')} = ${expr.value(to.orderId)}`, `${expr.path('linkedAt')} = ${expr.value(now)}`];
    if (to.refundId !== undefined) sets.push(`${expr.path('refundId')} = ${expr.value(to.refundId)}`);
    const written = await conditionally(() =>
      this.table.db.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: referenceKey(kind, ref),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
        }),
      ),
    );
    return written;
  }

  async findReference(kind: ReferenceKind, ref: string): Promise<ReferenceTarget | undefined> {
    if (kind === 'order_number') {
      const indexed = await this.findOrderByLookup(ref);
      if (indexed) return indexed;
      // Orders opened before the lookup index had a reference item instead.
    }
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: referenceKey(kind, ref), ConsistentRead: true }));
    return referenceTarget(Item);
  }

  /**
   * The order whose `lookupKey` is `ref`, from the lookup index (eventually consistent: an order
   * opened a moment ago may not be found yet; callers then go to the source, as for an unknown one).
   * Should two orders carry one key, the first opened is the one found, as with reference items.
   */
  private async findOrderByLookup(ref: string): Promise<ReferenceTarget | undefined> {
    const { name, partitionKey } = TABLE.lookupIndex;
    const query = this.table.db.send(
      new QueryCommand({
        TableName: this.table.tableName,
        IndexName: name,
        KeyConditionExpression: '#key = :key',
        ExpressionAttributeNames: { '#key': partitionKey },
        ExpressionAttributeValues: { ':key': ref },
        Limit: 10,
      }),
    );
    // A table made before the index (a local one dynalite could not add it to) finds nothing by it.
    const { Items = [] } = await query.catch((error: Error) => {
      if (error.name === 'ValidationException' && /index/i.test(error.message)) return { Items: [] };
      throw error;
    });
    const orderIds = Items.map(orderIdOf);
    if (orderIds.length <= 1) return orderIds[0] === undefined ? undefined : { orderId: orderIds[0] };
    const opened = await Promise.all(
      orderIds.map(async (orderId) => {
        const { Item } = await this.table.db.send(
          new GetCommand({ TableName: this.table.tableName, Key: orderKey(orderId), ProjectionExpression: 'createdAt' }),
        );
        return { orderId, createdAt: String(Item?.createdAt ?? '') };
      }),
    );
    return { orderId: opened.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.orderId.localeCompare(b.orderId))[0]!.orderId };
  }
}

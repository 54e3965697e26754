import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ExpressionBuilder } from '../expression';
import { referenceKey } from '../keys';
import type { ReferenceKind, ReferenceTarget, ReferencesPort } from '../order-store';
import type { TableAccess } from './table-access';

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

  async findReference(kind: ReferenceKind, ref: string): Promise<ReferenceTarget | undefined> {
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: referenceKey(kind, ref), ConsistentRead: true }));
    return referenceTarget(Item);
  }
}

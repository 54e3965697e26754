import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ExpressionBuilder } from '../expression';
import { dueShard, dueShardName, orderIdOf, orderKey } from '../keys';
import type { DueOrder, OutboxPort } from '../order-store';
import { TABLE } from '../table';
import { conditionally, type TableAccess } from './table-access';

/** The sparse due index over order items: an order is in it while it has outbound work due. */
export class DynamoOutbox implements OutboxPort {
  constructor(private readonly table: TableAccess) {}

  async findDueOrders(now: string, limit: number): Promise<string[]> {
    return (await this.findDue(now, limit)).map((entry) => entry.orderId);
  }

  async findDue(now: string, limit: number): Promise<DueOrder[]> {
    const { name, partitionKey, sortKey } = TABLE.dueIndex;
    const pages = await Promise.all(
      Array.from({ length: TABLE.dueShards }, (_, shard) =>
        this.table.db.send(
          new QueryCommand({
            TableName: this.table.tableName,
            IndexName: name,
            KeyConditionExpression: '#shard = :shard AND #due <= :now',
            ExpressionAttributeNames: { '#shard': partitionKey, '#due': sortKey },
            ExpressionAttributeValues: { ':shard': dueShardName(shard), ':now': now },
            Limit: limit,
          }),
        ),
      ),
    );
    const due = pages.flatMap((page) => (page.Items ?? []).map((item) => ({ orderId: orderIdOf(item), dueAt: String(item[sortKey]) })));
    return due.sort((a, b) => a.dueAt.localeCompare(b.dueAt)).slice(0, limit);
  }

  reschedule(orderId: string, version: number, dueAt: string | undefined): Promise<boolean> {
    const expr = new ExpressionBuilder();
    const { partitionKey: shard, sortKey: due } = TABLE.dueIndex;
    const update = dueAt
      ? `SET ${expr.path(due)} = ${expr.value(dueAt)}, ${expr.path(shard)} = ${expr.value(dueShard(orderId))}`
      : `REMOVE ${expr.path(due)}, ${expr.path(shard)}`;
    return conditionally(() =>
      this.table.db.send(
        new UpdateCommand({
          TableName: this.table.tableName,
          Key: orderKey(orderId),
          UpdateExpression: update,
          ConditionExpression: `${expr.path('version')} = ${expr.value(version)}`,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
        }),
      ),
    );
  }
}

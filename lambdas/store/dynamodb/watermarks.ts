import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { watermarkKey } from '../keys';
import type { Watermark, WatermarkCursor, WatermarksPort } from '../order-store';
import { TABLE } from '../table';
import { conditionally, type TableAccess } from './table-access';

/** One item per poller: how far it has read, moved forward by one conditional put at a time. */
export class DynamoWatermarks implements WatermarksPort {
  constructor(private readonly table: TableAccess) {}

  async getWatermark(name: string): Promise<Watermark | undefined> {
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: watermarkKey(name), ConsistentRead: true }));
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
    return conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: item,
          ConditionExpression: expected ? '#version = :version AND #at <= :at' : 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: expected ? { '#version': 'version', '#at': 'at' } : { '#pk': TABLE.partitionKey },
          ...(expected && { ExpressionAttributeValues: { ':version': expected.version, ':at': next.at } }),
        }),
      ),
    );
  }
}

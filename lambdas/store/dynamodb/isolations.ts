import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { isolationKey, isolationPartition, isolationSubjectOf } from '../keys';
import { StoreScanLimitError, type Actor, type Isolation, type IsolationsPort, type StoredIsolation } from '../order-store';
import { TABLE } from '../table';
import { SCAN_MAX_PAGES, boundedRaw, conditionally, type TableAccess } from './table-access';

function isolationFrom(item: Record<string, unknown>): StoredIsolation {
  return {
    source: item.source as Actor,
    subject: isolationSubjectOf(item),
    fingerprint: String(item.fingerprint),
    reason: typeof item.reason === 'string' ? item.reason : '',
    raw: typeof item.raw === 'string' ? item.raw : '',
    attributes: (item.attributes as Record<string, string> | undefined) ?? {},
    since: String(item.since),
  };
}

/** Records set aside, one item per source and subject, a partition per source. */
export class DynamoIsolations implements IsolationsPort {
  constructor(private readonly table: TableAccess) {}

  async isolate(isolation: Isolation, now: string): Promise<{ opened: boolean }> {
    const opened = await conditionally(() =>
      this.table.db.send(
        new PutCommand({
          TableName: this.table.tableName,
          Item: { ...isolationKey(isolation.source, isolation.subject), ...isolation, raw: boundedRaw(isolation.raw) ?? '', since: now },
          ConditionExpression: 'attribute_not_exists(#sk) OR #fingerprint <> :fingerprint',
          ExpressionAttributeNames: { '#sk': TABLE.sortKey, '#fingerprint': 'fingerprint' },
          ExpressionAttributeValues: { ':fingerprint': isolation.fingerprint },
        }),
      ),
    );
    return { opened };
  }

  releaseIsolation(source: Actor, subject: string, fingerprint: string): Promise<boolean> {
    return conditionally(() =>
      this.table.db.send(
        new DeleteCommand({
          TableName: this.table.tableName,
          Key: isolationKey(source, subject),
          ConditionExpression: '#fingerprint = :fingerprint',
          ExpressionAttributeNames: { '#fingerprint': 'fingerprint' },
          ExpressionAttributeValues: { ':fingerprint': fingerprint },
        }),
      ),
    );
  }

  async getIsolation(source: Actor, subject: string): Promise<StoredIsolation | undefined> {
    const { Item } = await this.table.db.send(new GetCommand({ TableName: this.table.tableName, Key: isolationKey(source, subject), ConsistentRead: true }));
    return Item ? isolationFrom(Item) : undefined;
  }

  async listIsolations(source: Actor): Promise<StoredIsolation[]> {
    const found: StoredIsolation[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < SCAN_MAX_PAGES; page++) {
      const result = await this.table.db.send(
        new QueryCommand({
          TableName: this.table.tableName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          ExpressionAttributeValues: { ':pk': isolationPartition(source) },
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
}

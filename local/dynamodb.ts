import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import { TABLE } from '../lambdas/store/table';

// dynalite ships no types; this is the part of its API we use.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require('dynalite') as (options: {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => import('node:http').Server;

export interface LocalDynamo {
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts dynalite on loopback: in memory, or persisted in LevelDB under `path` so state survives
 * a restart. It has no transactions, streams or TTL, which the design does not need.
 */
export async function startDynalite(options: { path?: string; port?: number } = {}): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(options.path && { path: options.path }) });
  // The SDK keeps connections alive; Node's server drops an idle one after 5 s, and a request sent
  // on it as it closes fails with ECONNRESET (seen as three failed attempts on a loaded machine).
  // Outlive the client's idle sockets instead, as DynamoDB's own endpoint does.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Requests in flight finish first (dynalite closes its database once the server closes);
        // sockets kept alive are closed as they go idle, the stragglers after a grace period.
        const sweep = setInterval(() => server.closeIdleConnections(), 20);
        const grace = setTimeout(() => server.closeAllConnections(), 2_000);
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(grace);
          resolve();
        });
      }),
  };
}

/** Creates the single table (same keys and indexes as the CDK stack) unless it exists; adds an index it lacks. */
export async function ensureTable(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: 'ap-southeast-2', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const { partitionKey, sortKey, dueIndex, lookupIndex } = TABLE;
  const lookup = {
    IndexName: lookupIndex.name,
    KeySchema: [{ AttributeName: lookupIndex.partitionKey, KeyType: 'HASH' as const }],
    Projection: { ProjectionType: 'KEYS_ONLY' as const },
  };
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    // Data kept in .local/ from before the lookup index: the index is added once, in place.
    if (!Table?.GlobalSecondaryIndexes?.some((index) => index.IndexName === lookupIndex.name)) {
      const addIndex = (throughput: boolean) =>
        client.send(
          new UpdateTableCommand({
            TableName: tableName,
            AttributeDefinitions: [{ AttributeName: lookupIndex.partitionKey, AttributeType: 'S' }],
            GlobalSecondaryIndexUpdates: [
              { Create: { ...lookup, ...(throughput && { ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 } }) } },
            ],
          }),
        );
      // dynalite asks for a throughput even on an on-demand table, which DynamoDB refuses (docs/design.md §2.1).
      await addIndex(false).catch((error: Error) => {
        if (!/provisionedThroughput/i.test(error.message)) throw error;
        return addIndex(true);
      });
      // dynalite accepts the update but builds no index on an existing table.
      const after = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (!after.Table?.GlobalSecondaryIndexes?.some((index) => index.IndexName === lookupIndex.name)) {
        process.stderr.write(
          `warning: table ${tableName} (kept in .local/) has no '${lookupIndex.name}' index and dynalite cannot add one; orders are then not found by their number until .local/ is deleted\n`,
        );
      }
    }
    return;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  } finally {
    client.destroy();
  }
  const creator = new DynamoDBClient({ endpoint, region: 'ap-southeast-2', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  await creator.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [partitionKey, sortKey, dueIndex.partitionKey, dueIndex.sortKey, lookupIndex.partitionKey].map((name) => ({
        AttributeName: name,
        AttributeType: 'S',
      })),
      KeySchema: [
        { AttributeName: partitionKey, KeyType: 'HASH' },
        { AttributeName: sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: dueIndex.name,
          KeySchema: [
            { AttributeName: dueIndex.partitionKey, KeyType: 'HASH' },
            { AttributeName: dueIndex.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        lookup,
      ],
    }),
  );
  creator.destroy();
}

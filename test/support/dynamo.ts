import { randomBytes } from 'node:crypto';
import { createDocumentClient } from '../../lambdas/commons/clients/dynamodb';
import { DynamoOrderStore } from '../../lambdas/store/dynamodb-order-store';
import { ensureTable, startDynalite, type LocalDynamo } from '../../local/dynamodb';
import { startDynamoDbLocal } from './dynamodb-local';

/**
 * The DynamoDB a test file runs against: dynalite in memory by default; DynamoDB Local when
 * `TEST_DYNAMO=local` (tools/dynamodb-local/test.ts sets it for the store and race tests, and
 * `DYNAMODB_LOCAL_ENDPOINT` to the one instance it started; without it each file starts its own).
 */
export type TestEngine = 'dynalite' | 'dynamodb-local';

export interface TestDynamo extends LocalDynamo {
  readonly engine: TestEngine;
  /** The table created for this file (unique on a shared DynamoDB Local, so files cannot collide). */
  readonly tableName: string;
}

export const testEngine = (): TestEngine => (process.env.TEST_DYNAMO === 'local' ? 'dynamodb-local' : 'dynalite');

let tables = 0;

/** Starts (or joins) the engine and creates the single table for this file. */
export async function startTestDynamo(baseTableName: string): Promise<TestDynamo> {
  const engine = testEngine();
  let dynamo: LocalDynamo;
  let tableName = baseTableName;
  if (engine === 'dynalite') {
    dynamo = await startDynalite();
  } else {
    const shared = process.env.DYNAMODB_LOCAL_ENDPOINT;
    dynamo = shared ? { endpoint: shared, close: () => Promise.resolve() } : await startDynamoDbLocal();
    // jest loads this module afresh for every test file of a worker, so the counter alone repeats
    // across files in one process: a random part keeps each file's table its own.
    tableName = `${baseTableName}-${process.pid}-${randomBytes(4).toString('hex')}-${++tables}`;
  }
  await ensureTable(dynamo.endpoint, tableName);
  return { ...dynamo, engine, tableName };
}

/** `startTestDynamo`, and the order store over this file's table: what a store test starts from. */
export async function startTestStore(baseTableName: string): Promise<{ dynamo: TestDynamo; store: DynamoOrderStore }> {
  const dynamo = await startTestDynamo(baseTableName);
  return { dynamo, store: new DynamoOrderStore(createDocumentClient(dynamo.endpoint), dynamo.tableName) };
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLocalSecrets } from '../../local/secrets-file';
import { loadRoutes, startServer, type LocalServer } from '../../local/server';
import { runtime, type Runtime } from '../../lambdas/functions/runtime';
import { startTestDynamo, type TestDynamo } from './dynamo';

/**
 * A real refund-relay on loopback for one test file: dynalite in memory (DynamoDB Local with
 * `TEST_DYNAMO=local`, test/support/dynamo.ts), a fresh secrets file, and
 * the local HTTP server serving the same handler modules Lambda runs. Nothing is mocked.
 */
export interface TestStack {
  readonly url: string;
  readonly dynamo: TestDynamo;
  readonly secretsFile: string;
  readonly secrets: ReturnType<typeof generateLocalSecrets>;
  readonly runtime: Runtime;
  /** Rewrites the secrets file, as a rotation in Secrets Manager would. */
  writeSecrets(secrets: ReturnType<typeof generateLocalSecrets>): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startTestStack(env: Record<string, string> = {}): Promise<TestStack> {
  const dynamo = await startTestDynamo(env.TABLE_NAME ?? 'refund-relay-test');
  const dir = await mkdtemp(join(tmpdir(), 'refund-relay-test-'));
  const secretsFile = join(dir, 'secrets.json');
  const secrets = generateLocalSecrets();
  await writeFile(secretsFile, JSON.stringify(secrets));
  const port = await freePort();
  Object.assign(process.env, {
    STAGE: 'test',
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    SECRETS_SOURCE: 'file',
    LOCAL_SECRETS_FILE: secretsFile,
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    AWS_REGION: 'ap-southeast-2',
    // Test orders rarely carry an e-mail: offers go out as events, kept in memory (publishedOfferEvents).
    APACE_OFFER_DELIVERY: 'event',
    ...env,
    TABLE_NAME: dynamo.tableName,
  });
  const server: LocalServer = await startServer(loadRoutes(), { port });
  return {
    url: server.url,
    dynamo,
    secretsFile,
    secrets,
    runtime: runtime(),
    writeSecrets: (next) => writeFile(secretsFile, JSON.stringify(next)),
    close: async () => {
      await server.close();
      await dynamo.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

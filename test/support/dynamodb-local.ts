import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import type { LocalDynamo } from '../../local/dynamodb';

/**
 * DynamoDB Local (AWS's own emulator, the jar shipped in the `amplify-dynamodb-simulator` devDependency)
 * beside dynalite, so the store and race tests also run against DynamoDB's own semantics
 * (docs/design.md §2.1, "DynamoDB Local"). It needs Java; without it nothing here starts.
 */
export function emulatorDir(): string {
  return join(dirname(require.resolve('amplify-dynamodb-simulator/package.json')), 'emulator');
}

/** True when a `java` that runs is on the PATH. */
export function javaAvailable(): boolean {
  const probe = spawnSync('java', ['-version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function serving(endpoint: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: 'ap-southeast-2', maxAttempts: 1, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    for (const end = Date.now() + deadlineMs; Date.now() < end;) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with ${child.exitCode}`);
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    }
    throw new Error(`DynamoDB Local did not answer on ${endpoint} within ${deadlineMs} ms`);
  } finally {
    client.destroy();
  }
}

/**
 * Starts DynamoDB Local in memory on a free loopback port. `-sharedDb` makes every access key and
 * region see one database: without it the store's clients and the table creator (different
 * credentials) would each see their own, empty one.
 */
export async function startDynamoDbLocal(): Promise<LocalDynamo> {
  const dir = emulatorDir();
  const port = await freeLoopbackPort();
  const child = spawn(
    'java',
    [
      '-Xms64m',
      '-Xmx512m',
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(dir, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-sharedDb',
      '-port',
      String(port),
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await serving(endpoint, child, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    endpoint,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

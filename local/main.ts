import { mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ensureTable, startDynalite } from './dynamodb';
import { applyLocalEnvironment, localSettings } from './environment';
import { ensureLocalSecrets } from './secrets-file';
import { loadRoutes, startServer } from './server';

/** `npm start`: dynalite persisted under .local/, the secrets file, and the HTTP API on PORT. */
async function main(): Promise<void> {
  const settings = localSettings();
  applyLocalEnvironment(settings);
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  await mkdir(settings.dataDir, { recursive: true });
  const secretsFile = process.env.LOCAL_SECRETS_FILE!;
  const { created } = await ensureLocalSecrets(secretsFile);

  const dynamo = await startDynalite({ path: join(settings.dataDir, 'dynamodb'), port: settings.dynamoPort }).catch((error: Error) => {
    throw new Error(`cannot start dynalite on port ${settings.dynamoPort} (${error.message}); set DYNAMODB_PORT to a free port`);
  });
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  await ensureTable(dynamo.endpoint, process.env.TABLE_NAME!);

  const server = await startServer(loadRoutes(), { port: settings.port }).catch((error: Error) => {
    throw new Error(`cannot listen on port ${settings.port} (${error.message}); set PORT to a free port`);
  });
  const shown = (path: string) => relative(process.cwd(), path) || path;
  process.stdout.write(
    [
      'refund-relay local runtime',
      `  API       ${server.url}   (try: curl ${server.url}/health)`,
      `  DynamoDB  ${dynamo.endpoint}   (dynalite, data in ${shown(join(settings.dataDir, 'dynamodb'))})`,
      `  Secrets   ${shown(secretsFile)}${created ? '   (created with random values)' : ''}`,
      '',
      'Run a refund through the Apace callbacks, in another terminal:',
      '  npm run seed',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await dynamo.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`refund-relay failed to start: ${error.message}\n`);
  process.exit(1);
});

import { mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createAp21Poller } from '../lambdas/functions/ap21-runtime';
import { createDispatcher, createInboxReplay } from '../lambdas/functions/dispatch-runtime';
import { runtime } from '../lambdas/functions/runtime';
import { logger } from '../lambdas/commons/logger';
import { LocalQueue } from '../lambdas/services/local-queue';
import { replayInbox, sweep } from '../lambdas/services/sweeper';
import { ensureTable, startDynalite } from './dynamodb';
import { applyLocalEnvironment, localSettings } from './environment';
import { ensureLocalSecrets, type generateLocalSecrets } from './secrets-file';
import { loadRoutes, startServer } from './server';
import { startProviderSimulators } from './simulators';

/**
 * `npm start` (docs/design.md §5): dynalite persisted under .local/, the secrets file, the provider
 * simulators, the HTTP API on PORT, and the dispatcher and sweeper running in-process — the same
 * code as the Lambdas, with an in-memory queue where AWS has SQS.
 */
async function main(): Promise<void> {
  const settings = localSettings();
  applyLocalEnvironment(settings);
  await mkdir(settings.dataDir, { recursive: true });
  const secretsFile = process.env.LOCAL_SECRETS_FILE!;
  const { created, secrets } = await ensureLocalSecrets(secretsFile);

  const dynamo = await startDynalite({ path: join(settings.dataDir, 'dynamodb'), port: settings.dynamoPort }).catch((error: Error) => {
    throw new Error(`cannot start dynalite on port ${settings.dynamoPort} (${error.message}); set DYNAMODB_PORT to a free port`);
  });
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  await ensureTable(dynamo.endpoint, process.env.TABLE_NAME!);

  const simulators = await startProviderSimulators(secrets as ReturnType<typeof generateLocalSecrets>, { port: settings.simulatorPort }).catch(
    (error: Error) => {
      throw new Error(`cannot start the provider simulators on port ${settings.simulatorPort} (${error.message}); set SIMULATOR_PORT to a free port`);
    },
  );
  const server = await startServer(loadRoutes(), { port: settings.port }).catch((error: Error) => {
    throw new Error(`cannot listen on port ${settings.port} (${error.message}); set PORT to a free port`);
  });

  const rt = runtime();
  const dispatcher = createDispatcher(rt);
  const queue = new LocalQueue((orderId) => dispatcher.processOrder(orderId));
  const inbox = createInboxReplay(rt);
  const sweeper = setInterval(() => {
    replayInbox(inbox, Date.now())
      .then(() => sweep(rt.store, queue, Date.now()))
      .catch((error: unknown) => logger.warn('sweep failed', { error }));
  }, settings.sweepIntervalMs);
  // The Ap21 poller, as the scheduled Lambda runs it; one run at a time.
  const poller = createAp21Poller(rt, process.env, queue);
  let polling: Promise<unknown> | undefined;
  const pollTimer = setInterval(() => {
    polling ??= poller
      .run()
      .catch((error: unknown) => logger.warn('Ap21 poll failed', { error }))
      .finally(() => (polling = undefined));
  }, settings.pollIntervalMs);

  const shown = (path: string) => relative(process.cwd(), path) || path;
  process.stdout.write(
    [
      'refund-relay local runtime',
      `  API         ${server.url}   (try: curl ${server.url}/health)`,
      `  DynamoDB    ${dynamo.endpoint}   (dynalite, data in ${shown(join(settings.dataDir, 'dynamodb'))})`,
      `  Simulators  ${simulators.host.url}   (Apace, Addon Payments, PayPro, Optty, Ap21; payouts at ${simulators.host.url}/_sim/payouts)`,
      `  Secrets     ${shown(secretsFile)}${created ? '   (created with random values)' : ''}`,
      `  Dispatcher  in-process; the sweeper looks for due work every ${settings.sweepIntervalMs / 1000} s`,
      `  Ap21 poller in-process, every ${settings.pollIntervalMs / 1000} s, against the Ap21 simulator`,
      '',
      'In another terminal:',
      '  npm run demo    # one refund through every channel against the simulators',
      '  npm run seed    # a refund offered through Apace, with the curl commands Apace would run',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(sweeper);
    clearInterval(pollTimer);
    await polling;
    await queue.stop();
    await server.close();
    await simulators.close();
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

import './env';
import { availableParallelism } from 'node:os';
import { SECRET_NAMES } from '../lambdas/providers/registry';
import { runtime } from '../lambdas/functions/runtime';
import { ensureTable } from '../local/dynamodb';
import { generateLocalSecrets } from '../local/secrets-file';
import { benchBundles } from './bundles';
import { benchOrderSize } from './order-size';
import { benchPipeline } from './pipeline';
import { benchPoller } from './poller';
import { report } from './report';
import { startSimulatorProcess } from './simulator-process';
import { startCountedDynalite, startFakeSecretsManager } from './support';
import { benchVerification } from './verification';

/**
 * `npm run bench`: ratios measured side by side in one run (absolute times on a shared machine are
 * noise). Prints a table, then one JSON object on the last line.
 */
async function main(): Promise<void> {
  const started = performance.now();
  const secrets = generateLocalSecrets();
  const prefix = 'refund-relay/bench/';
  const dynamo = await startCountedDynalite();
  const secretsManager = await startFakeSecretsManager(new Map(SECRET_NAMES.map((name) => [`${prefix}${name}`, secrets[name]])));
  const sims = await startSimulatorProcess(secrets);
  Object.assign(process.env, {
    STAGE: 'bench',
    TABLE_NAME: 'refund-relay-bench',
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    SECRETS_SOURCE: 'aws',
    SECRETS_PREFIX: prefix,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.url,
    PUBLIC_BASE_URL: 'https://refunds.example.com',
    ...sims.env,
  });
  await ensureTable(dynamo.endpoint, process.env.TABLE_NAME!);
  const rt = runtime();
  try {
    process.stderr.write('verification…\n');
    const verification = await benchVerification(rt, dynamo, secretsManager);
    process.stderr.write('bundles…\n');
    const bundles = await benchBundles({ ...process.env, DISPATCH_QUEUE_URL: 'https://sqs.ap-southeast-2.amazonaws.com/000000000000/dispatch' });
    process.stderr.write('pipeline…\n');
    const pipeline = await benchPipeline(rt, sims, dynamo, process.env);
    process.stderr.write('order item size…\n');
    const orderSize = await benchOrderSize(rt.store, dynamo.endpoint, process.env.TABLE_NAME!, Date.now().toString(36));
    process.stderr.write('poller…\n');
    const poller = await benchPoller(rt);
    const { text, json } = report({
      verification,
      bundles,
      pipeline,
      orderSize,
      poller,
      cores: availableParallelism(),
      seconds: (performance.now() - started) / 1000,
    });
    process.stdout.write(`${text}\n${JSON.stringify(json)}\n`);
  } finally {
    await sims.close();
    await secretsManager.close();
    await dynamo.close();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

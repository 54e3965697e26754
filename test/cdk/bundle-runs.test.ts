import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { initOutputs } from '../../bench/bundles';
import { REBATE_PATH } from '../../lambdas/providers/addon-payments/client';
import { functionBuild } from '../../lib/bundling';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { demoOrderWithRefund } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * The dispatcher's Lambda bundle, built exactly as `cdk synth` builds it (ES modules in chunks,
 * lib/bundling.ts), run in a node of its own against dynalite and the EPG simulator on loopback:
 * the connector it needs is a chunk loaded on first use, and the refund is paid once through it.
 */
let stack: TestStack;
let sims: ProviderSimulators;
let dir: string;
let metafile: Metafile;

beforeAll(async () => {
  stack = await startTestStack({ ROUTING_POLICY: 'reversal_only' });
  sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 50, apaceWebhookRetryGapMs: 100 });
  dir = await mkdtemp(join(tmpdir(), 'refund-relay-bundle-'));
  ({ metafile } = await build({ ...functionBuild('dispatcher', dir), metafile: true }));
});
afterAll(async () => {
  await sims.close();
  await stack.close();
  await rm(dir, { recursive: true, force: true });
});

/** Loads the bundle in a fresh node, as Lambda would, and hands it one doorbell message. */
async function invokeBundle(orderId: string): Promise<unknown> {
  const script = [
    `const { handler } = await import(${JSON.stringify(pathToFileURL(join(dir, 'index.mjs')).href)});`,
    `const context = { awsRequestId: 'bundle-test', getRemainingTimeInMillis: () => 60000 };`,
    `const result = await handler({ Records: [{ messageId: 'm-1', body: ${JSON.stringify(JSON.stringify({ orderId }))} }] }, context);`,
    `process.stdout.write(JSON.stringify(result));`,
  ].join('\n');
  const env = { ...process.env, ...sims.env, DISPATCH_QUEUE_URL: 'https://sqs.ap-southeast-2.amazonaws.com/000000000000/dispatch', LOG_LEVEL: 'ERROR' };
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env, timeout: 30_000 });
  return JSON.parse(stdout) as unknown;
}

it('keeps each provider connector out of the code loaded at init, and pays a card reversal once through the loaded chunk', async () => {
  const chunks = await readdir(join(dir, 'chunks'));
  const everything = (await Promise.all(chunks.map((chunk) => readFile(join(dir, 'chunks', chunk), 'utf8')))).join('');
  expect(everything).toContain(REBATE_PATH);
  const atInit = (await Promise.all(initOutputs(metafile, relative(process.cwd(), join(dir, 'index.mjs'))).map((file) => readFile(file, 'utf8')))).join('');
  expect(atInit).toContain('DynamoDBClient');
  expect(atInit).not.toContain(REBATE_PATH);

  const orderId = 'bundle-epg-1';
  sims.addonPayments.seedTransaction('7831830', { amount: { minor: 16480, currency: 'AUD' }, paymentSolution: 'creditcards' });
  await demoOrderWithRefund(stack.runtime.store, orderId, { source: { kind: 'manual', ref: 'bundle' } });

  expect(await invokeBundle(orderId)).toEqual({ batchItemFailures: [] });
  const stored = await stack.runtime.store.getOrder(orderId);
  expect(stored?.refunds[`${orderId}-r1`]?.state).toBe('paid');
  expect([...sims.addonPayments.payouts().values()].reduce((sum, count) => sum + count, 0)).toBe(1);
});

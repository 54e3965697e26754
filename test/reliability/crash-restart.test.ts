import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PaymentProvider } from '../../lambdas/domain/order';
import { createRuntime } from '../../lambdas/functions/runtime';
import { startSimulatorHost, type Simulator, type SimulatorHost } from '../../simulators/kit';
import type { OrderStore } from '../../lambdas/store/order-store';
import { generateLocalSecrets } from '../../local/secrets-file';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { orderWithRefund } from '../support/fixtures';
import { freePort } from '../support/stack';

/**
 * `npm start`'s runtime, killed with SIGKILL while the dispatcher has provider calls in flight and
 * started again on the same data: the outbox must lose nothing and pay nothing twice. The provider
 * simulators run here, not in the child, so their payout counts outlive the kill.
 */
const ROOT = join(__dirname, '..', '..');
const REFUNDS = 60;
const TABLE_NAME = 'refund-relay-crash';
const PROVIDERS: readonly PaymentProvider[] = ['addon_payments', 'paypro', 'optty'];
/** Before a provider acts (the fault knob) and after it acted, before its answer leaves. */
const LATENCY_MS = 150;
const HOLD_ANSWER_MS = 400;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dataDir: string;
let sims: ProviderSimulators;
let host: SimulatorHost;
let store: OrderStore;
let childEnv: NodeJS.ProcessEnv;
let apiUrl: string;
const children = new Set<ChildProcess>();
/** References whose payout a provider has made and whose answer it is still holding. */
const unanswered = new Set<string>();

/**
 * The simulator, but its answer leaves `HOLD_ANSWER_MS` after it acted: a kill in that window is
 * the case only idempotency references make safe — the provider paid, refund-relay never heard.
 */
function answeringLate(simulator: Simulator): Simulator {
  return {
    name: simulator.name,
    payouts: () => simulator.payouts(),
    ...(simulator.seed && { seed: (record: unknown) => simulator.seed!(record) }),
    async handle(request) {
      const before = new Map(simulator.payouts());
      const response = await simulator.handle(request);
      const paid = [...simulator.payouts()].filter(([reference, count]) => count > (before.get(reference) ?? 0)).map(([reference]) => reference);
      for (const reference of paid) unanswered.add(reference);
      await sleep(HOLD_ANSWER_MS);
      for (const reference of paid) unanswered.delete(reference);
      return response;
    },
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'refund-relay-crash-'));
  // The child reads its credentials from here and the simulators accept exactly these.
  const secrets = generateLocalSecrets();
  const secretsFile = join(dataDir, 'secrets.json');
  await writeFile(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
  sims = await startProviderSimulators(secrets);
  // The same simulators behind a host of our own that holds their answers (startProviderSimulators'
  // host stays idle: it is only used for wiring the credentials into the simulators).
  host = await startSimulatorHost({
    'addon-payments': answeringLate(sims.addonPayments),
    paypro: answeringLate(sims.paypro),
    optty: answeringLate(sims.optty.api),
    'optty-auth': sims.optty.auth,
    apace: sims.apace,
  });
  for (const prefix of ['addon-payments', 'paypro', 'optty', 'optty-auth']) host.setFaults(prefix, { latencyMs: LATENCY_MS });

  const [port, dynamoPort, simulatorPort] = [await freePort(), await freePort(), await freePort()];
  apiUrl = `http://127.0.0.1:${port}`;
  childEnv = {
    PATH: process.env.PATH,
    PORT: String(port),
    DYNAMODB_PORT: String(dynamoPort),
    SIMULATOR_PORT: String(simulatorPort),
    LOCAL_DATA_DIR: dataDir,
    TABLE_NAME,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    SWEEP_INTERVAL_MS: '200',
    // A dead runtime's leases run out quickly, and the refunds PayPro leaves unknown reach an operator quickly.
    DISPATCH_LEASE_MS: '2000',
    DISPATCH_BASE_DELAY_MS: '100',
    DISPATCH_MAX_DELAY_MS: '400',
    DISPATCH_MAX_ATTEMPTS: '4',
    ADDON_PAYMENTS_API_URL: host.baseUrl('addon-payments'),
    PAYPRO_API_URL: host.baseUrl('paypro'),
    OPTTY_API_URL: host.baseUrl('optty'),
    OPTTY_AUTH_URL: host.baseUrl('optty-auth'),
    APACE_API_URL: host.baseUrl('apace'),
  };
  store = createRuntime({
    STAGE: 'test',
    TABLE_NAME,
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${dynamoPort}`,
    SECRETS_SOURCE: 'file',
    LOCAL_SECRETS_FILE: secretsFile,
  }).store;
});

afterAll(async () => {
  await Promise.all([...children].map(kill));
  await host?.close();
  await sims?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** `npm start`, as a child process of its own; resolves once its API answers. */
async function startLocalRuntime(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const keep = (chunk: Buffer) => (output = `${output}${chunk.toString()}`.slice(-4_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the local runtime exited with ${child.exitCode}:\n${output}`);
    if (
      await fetch(`${apiUrl}/health`).then(
        (response) => response.ok,
        () => false,
      )
    )
      return child;
    if (Date.now() > deadline) throw new Error(`the local runtime did not answer within 20 s:\n${output}`);
    await sleep(100);
  }
}

/** SIGKILL: no shutdown hook runs, nothing is flushed or drained. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

interface Seeded {
  readonly orderId: string;
  readonly refundId: string;
  readonly provider: PaymentProvider;
  /** Where the provider counts the payout: our refund id, or PayPro's order id. */
  readonly reference: string;
}

/** As the demo does: the provider holds the original payment, then the order and its refund are written. */
async function seedRefund(i: number): Promise<Seeded> {
  const provider = PROVIDERS[i % PROVIDERS.length]!;
  const orderId = `crash-${i}`;
  const refundId = `${orderId}-r1`;
  const amount = { minor: 2_000 + i, currency: 'AUD' };
  const transactionId = provider === 'paypro' ? String(800_000 + i) : `tx-${orderId}`;
  if (provider === 'addon_payments') sims.addonPayments.seed({ transactionId, amount });
  if (provider === 'paypro') sims.paypro.seed!({ orderId: Number(transactionId), email: `c${i}@example.com`, amount });
  if (provider === 'optty') sims.optty.api.seed!({ reference: transactionId, captured: amount });
  await orderWithRefund(
    store,
    orderId,
    { provider, transactionId },
    { valueMinor: amount.minor, title: 'Shirt', refundId, actor: 'ap21', source: { kind: 'ap21_return', ref: refundId } },
  );
  return { orderId, refundId, provider, reference: provider === 'paypro' ? transactionId : refundId };
}

const totalPayouts = () => [...sims.payoutsByReference().values()].reduce((sum, count) => sum + count, 0);

async function waitFor(what: string, done: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting ${timeoutMs / 1000} s for ${what}`);
    await sleep(25);
  }
}

describe('the local runtime killed mid-dispatch and started again on the same data', () => {
  it('loses no refund and pays none twice: each is paid exactly once, or waits for an operator with a reason', async () => {
    const first = await startLocalRuntime();
    const seeded = await Promise.all(Array.from({ length: REFUNDS }, (_, i) => seedRefund(i)));

    // Kill once some refunds are paid and providers have paid others whose answers are still on the way.
    await waitFor('payouts with answers in flight', () => totalPayouts() >= 12 && unanswered.size >= 2, 20_000);
    const paidButUnheard = new Set(unanswered);
    await kill(first);
    const payoutsAtKill = totalPayouts();
    expect(payoutsAtKill).toBeLessThan(REFUNDS - 20);

    await startLocalRuntime();
    const finished = async () => {
      const orders = await Promise.all(seeded.map((r) => store.getOrder(r.orderId)));
      return orders.every((order, i) => ['paid', 'manual_review'].includes(order?.refunds[seeded[i]!.refundId]?.state ?? ''));
    };
    await waitFor('every refund to be paid or in manual review', finished, 30_000);

    const payouts = sims.payoutsByReference();
    const outcome: Record<string, number> = {};
    for (const r of seeded) {
      const order = (await store.getOrder(r.orderId))!;
      const refund = order.refunds[r.refundId]!;
      const paidOut = payouts.get(r.reference) ?? 0;
      outcome[`${r.provider} ${refund.state}`] = (outcome[`${r.provider} ${refund.state}`] ?? 0) + 1;
      expect({ refund: r.refundId, payouts: paidOut }).toEqual({ refund: r.refundId, payouts: refund.state === 'paid' ? 1 : expect.any(Number) });
      expect(paidOut).toBeLessThanOrEqual(1);
      // The unit is refunded or still held for the operator: never released, so no other channel can take it.
      expect(order.lines['1']).toMatchObject(refund.state === 'paid' ? { refunded: 1, reserved: 0 } : { refunded: 0, reserved: 1 });
      if (refund.state === 'manual_review') {
        expect(refund.reason).toEqual(expect.any(String));
        // Only PayPro, which has no idempotency key, may leave a refund it paid for an operator.
        expect(r.provider).toBe('paypro');
      }
      // A payout whose answer the kill cut off was found by the restarted runtime, not made again.
      if (paidButUnheard.has(r.reference)) expect(paidOut).toBe(1);
    }
    expect(outcome[`addon_payments paid`]).toBe(REFUNDS / 3);
    expect(outcome[`optty paid`]).toBe(REFUNDS / 3);
    expect(paidButUnheard.size).toBeGreaterThanOrEqual(2);
    process.stdout.write(
      `crash-restart: ${payoutsAtKill} payouts before the kill, ${[...paidButUnheard].join(', ')} paid but unheard; outcome ${JSON.stringify(outcome)}\n`,
    );
  }, 60_000);
});

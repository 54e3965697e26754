import { createHmac } from 'node:crypto';
import * as z from 'zod/mini';
import { sameSecret } from '../../lambdas/commons/constant-time';
import { UnauthorizedError } from '../../lambdas/commons/http-errors';
import { callBudget, createDispatcher, createReversalConnectors } from '../../lambdas/functions/dispatch-runtime';
import { inboundCheck } from '../../lambdas/functions/inbound-check';
import { providerModules } from '../../lambdas/providers/modules';
import type { InboundVerifier, ProviderModule } from '../../lambdas/providers/provider-module';
import type { PaymentProvider, ProviderId } from '../../lambdas/providers/registry';
import type { ReversalConnector, ReversalRequest } from '../../lambdas/providers/reversal';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import type { Simulator, SimRequest } from '../../simulators/kit';
import { SIMULATORS, type SimulatorEntry } from '../../simulators/registry';
import { orderWithRefund } from '../support/fixtures';
import { inboundRequest } from '../support/inbound';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * A sixth provider, added the way docs/design.md §4.1 says a real one is: a provider module (its
 * connector and inbound check) and a simulator entry, handed to the composition roots — nothing else
 * of refund-relay is edited. It is dispatched (a refund of a payment it took is reversed through
 * its connector, over real HTTP, once), verified (its inbound check, through the same `inboundCheck`
 * the routes use) and simulated locally (the local runtime starts it beside the others).
 */
const FAKE = 'fake_pay' as ProviderId;
const fakeSecretSchema = z.object({ apiKey: z.string().check(z.minLength(16)) });
type FakeSecret = z.infer<typeof fakeSecretSchema>;

/** The fake provider's simulator: `POST /refunds` with its API key pays each reference once. */
function fakeSimulator(secret: FakeSecret): Simulator {
  const paid = new Map<string, number>();
  return {
    name: 'fake-pay',
    async handle(request: SimRequest) {
      if (!sameSecret(String(request.headers.authorization ?? ''), `Bearer ${secret.apiKey}`)) return { status: 401, body: { error: 'bad key' } };
      if (request.method !== 'POST' || request.path !== '/refunds') return { status: 404, body: {} };
      const { reference } = JSON.parse(request.body.toString('utf8')) as { reference: string };
      if (!paid.has(reference)) paid.set(reference, 1);
      return { status: 200, body: { refund_id: `fp-${reference}`, status: 'refunded' } };
    },
    payouts: () => paid,
  };
}

class FakeConnector implements ReversalConnector {
  readonly provider = FAKE as PaymentProvider;
  constructor(
    private readonly apiUrl: string,
    private readonly secret: () => Promise<FakeSecret>,
  ) {}
  async submit(request: ReversalRequest) {
    const { apiKey } = await this.secret();
    const answer = await fetch(`${this.apiUrl}/refunds`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reference: request.refundId, amount: request.amount.minor }),
    });
    const body = (await answer.json()) as { refund_id?: string };
    return answer.ok
      ? { kind: 'succeeded' as const, providerRef: body.refund_id!, detail: 'refunded' }
      : { kind: 'failed' as const, retryable: answer.status >= 500, detail: `HTTP ${answer.status}` };
  }
  status(request: ReversalRequest) {
    return this.submit(request);
  }
}

const fakeInbound: InboundVerifier<FakeSecret, void> = {
  provider: FAKE,
  secretSchema: fakeSecretSchema,
  loadSettings: () => undefined,
  async verify(request, secrets) {
    const given = request.headers['x-fake-signature'] ?? '';
    const valid = await secrets.verifyWithRotation((secret) => sameSecret(given, createHmac('sha256', secret.apiKey).update(request.body).digest('hex')));
    if (!valid) throw new UnauthorizedError('signature does not match', 'invalid_signature');
  },
};

const fakeModule: ProviderModule = {
  id: FAKE,
  secretSchema: async () => fakeSecretSchema,
  inbound: async () => fakeInbound,
  reversal: {
    enabledBy: 'FAKE_PAY_API_URL',
    loadSettings: (env) => ({ apiUrl: String(env.FAKE_PAY_API_URL) }),
    callTimeoutMs: () => 5_000,
    connect: async (settings, secret) => {
      const reader = secret(fakeSecretSchema);
      return new FakeConnector((settings as { apiUrl: string }).apiUrl, () => reader.get());
    },
  },
};

const fakeSimulatorEntry: SimulatorEntry<Simulator> = {
  localSecret: () => ({ apiKey: 'fake-pay-api-key-0123456789' }),
  start: (secret) => {
    const sim = fakeSimulator(fakeSecretSchema.parse(secret));
    return { handle: sim, mounts: { 'fake-pay': sim }, paying: [sim] };
  },
  urls: { FAKE_PAY_API_URL: 'fake-pay' },
};

let stack: TestStack;
let sims: ProviderSimulators;
const fakeSecret = fakeSimulatorEntry.localSecret() as FakeSecret;
beforeAll(async () => {
  stack = await startTestStack();
  // The secrets file gains the provider's secret under its registry-derived name (fake_pay → fakePay).
  await stack.writeSecrets({ ...stack.secrets, ...{ fakePay: fakeSecret } });
  sims = await startProviderSimulators({ ...stack.secrets, ...{ fakePay: fakeSecret } }, {}, { ...SIMULATORS, [FAKE]: fakeSimulatorEntry });
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});

describe('a provider added through the registry alone', () => {
  it('is simulated locally: the local runtime starts it and points refund-relay at it', () => {
    expect(sims.env.FAKE_PAY_API_URL).toBe(sims.host.baseUrl('fake-pay'));
    expect(sims.byId[FAKE]).toBeDefined();
  });

  it('is dispatched: a refund of a payment it took is reversed through its connector, once', async () => {
    const env = { ...process.env, ...sims.env };
    const modules = [...providerModules(), fakeModule];
    const dispatcher = createDispatcher(stack.runtime, env, {
      reversals: createReversalConnectors(stack.runtime, env, modules),
      callBudget: callBudget(stack.runtime.config, env, modules),
    });
    await orderWithRefund(stack.runtime.store, 'fake-1', { provider: FAKE as PaymentProvider, transactionId: 't-1' }, { valueMinor: 4200 });
    await dispatcher.processOrder('fake-1');
    await dispatcher.processOrder('fake-1');

    expect((await stack.runtime.store.getOrder('fake-1'))!.refunds['fake-1-r1']).toMatchObject({ state: 'paid', refs: { providerRef: 'fp-fake-1-r1' } });
    expect(sims.payoutsByReference().get('fake-1-r1')).toBe(1);
  });

  it('is verified: its inbound check runs through the same inboundCheck as every route', async () => {
    const check = inboundCheck(stack.runtime, (await fakeModule.inbound()) as InboundVerifier<FakeSecret, void>);
    const body = '{"event":"refunded"}';
    const signature = createHmac('sha256', fakeSecret.apiKey).update(body).digest('hex');
    await expect(check.verify(inboundRequest({ body, headers: { 'x-fake-signature': signature } }))).resolves.toBeUndefined();
    await expect(check.verify(inboundRequest({ body, headers: { 'x-fake-signature': 'f'.repeat(64) } }))).rejects.toMatchObject({ status: 401 });
  });
});

describe('control: without its module', () => {
  it('the same refund is not reversed: the default registry has no connector for it, so an operator is told', async () => {
    const env = { ...process.env, ...sims.env };
    const dispatcher = createDispatcher(stack.runtime, env);
    await orderWithRefund(stack.runtime.store, 'fake-2', { provider: FAKE as PaymentProvider, transactionId: 't-2' }, { valueMinor: 4200 });
    await dispatcher.processOrder('fake-2');
    expect((await stack.runtime.store.getOrder('fake-2'))!.refunds['fake-2-r1']).toMatchObject({
      state: 'manual_review',
      reason: expect.stringContaining('no card-reversal connector for payment provider fake_pay'),
    });
    expect(sims.payoutsByReference().get('fake-2-r1')).toBeUndefined();
  });
});

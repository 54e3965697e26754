import { SecretReader, type SecretSource } from '../../../lambdas/commons/secrets';
import { money } from '../../../lambdas/domain/money';
import { openOrder } from '../../../lambdas/domain/order';
import { callbackUrls } from '../../../lambdas/providers/apace/callback-token';
import { ApaceClient, type ApaceOfferRequest } from '../../../lambdas/providers/apace/client';
import { DEFAULT_LOOKUP, offerExpiry, type ApaceConfig } from '../../../lambdas/providers/apace/config';
import { apaceSecretSchema, type ApaceSecret } from '../../../lambdas/providers/apace/schemas';
import { createApaceSimulator, type ApaceSimulator, type ApaceSimulatorOptions } from '../../../simulators/apace/simulator';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';
import { DAY_MS, demoOrder } from '../fixtures';
import { forwardingGate } from '../forwarding-gate';
import { startTestStack, type TestStack } from '../stack';

/**
 * A real refund-relay (dynalite + the handlers Lambda runs) and the Apace simulator on loopback,
 * wired the way production is: our client calls Apace, Apace calls our callback URLs.
 */
export interface ApaceWorld {
  readonly stack: TestStack;
  readonly secret: ApaceSecret;
  readonly simulator: ApaceSimulator;
  readonly host: SimulatorHost;
  readonly config: ApaceConfig;
  readonly client: ApaceClient;
  clientWith(config: Partial<ApaceConfig>, secrets?: SecretReader<ApaceSecret>): ApaceClient;
  /** The next call to Apace hangs for `hangMs` and is then cut, before or after the simulator acted. */
  loseNextAnswer(when: 'before_acting' | 'after_acting', hangMs: number): void;
  close(): Promise<void>;
}

export async function startApaceWorld(options: Partial<ApaceSimulatorOptions> = {}): Promise<ApaceWorld> {
  const stack = await startTestStack();
  const secret = stack.secrets.apace as ApaceSecret;
  const simulator = createApaceSimulator({
    apiKeys: [{ publicId: secret.publicId, apiSecret: secret.apiSecret }],
    processedDelayMs: 300,
    webhookRetryGapMs: 30,
    callbackTimeoutMs: 2000,
    ...options,
  });
  // The host draws two numbers per call: whether a fault fires (below its rate) and whether it
  // strikes after the simulator acted (below 0.5). Queued draws aim one fault at one call.
  const draws: number[] = [];
  const host = await startSimulatorHost({ apace: simulator }, { random: () => draws.shift() ?? 0.99 });
  const config: ApaceConfig = { apiUrl: host.baseUrl('apace'), timeoutMs: 3000, offerDays: 10, lookup: DEFAULT_LOOKUP };
  const reader = stack.runtime.secret('apace', apaceSecretSchema);
  const clientWith = (overrides: Partial<ApaceConfig>, secrets = reader) => new ApaceClient(secrets, { ...config, ...overrides });
  return {
    stack,
    secret,
    simulator,
    host,
    config,
    client: clientWith({}),
    clientWith,
    loseNextAnswer: (when, hangMs) => {
      host.setFaults('apace', { timeoutRate: 0.5, hangMs });
      draws.push(0, when === 'after_acting' ? 0 : 0.99);
    },
    close: async () => {
      simulator.close();
      await host.close();
      await stack.close();
    },
  };
}

/** A secret reader over fixed values: `stale` until a forced re-read, `fresh` after (a rotation). */
export function fixedSecrets(stale: ApaceSecret, fresh = stale): SecretReader<ApaceSecret> {
  const source: SecretSource = { get: async (_name, { forceFetch }) => (forceFetch ? fresh : stale) };
  return new SecretReader(source, 'apace', apaceSecretSchema);
}

export interface PendingOffer {
  readonly orderId: string;
  readonly refundId: string;
  readonly request: ApaceOfferRequest;
}

/**
 * Opens the demo order (unless open) and creates a refund in `offer_pending` on the Apace route,
 * with the offer request the dispatcher would send for it (callback URLs signed with our keys).
 */
export async function pendingOffer(
  world: ApaceWorld,
  orderId: string,
  options: { refundId?: string; amountMinor?: number; email?: string | null } = {},
): Promise<PendingOffer> {
  const { store } = world.stack.runtime;
  const now = new Date();
  const email = options.email === null ? undefined : (options.email ?? 'jane.doe@example.com');
  await store.putOrder(openOrder(demoOrder(orderId, { customer: { firstName: 'Jane', lastName: 'Doe', ...(email && { email }) } }), now.toISOString()));
  const refundId = options.refundId ?? `${orderId}-r1`;
  const amount = money(options.amountMinor ?? 5990, 'AUD');
  const offerExpiresAt = offerExpiry(world.config, now);
  await store.createRefund(
    orderId,
    { refundId, lines: { '1': 1 }, paymentId: 'pay-1', amount, route: 'apace', offerExpiresAt, source: { kind: 'manual', ref: refundId } },
    now.toISOString(),
    { actor: 'seed' },
  );
  const urls = callbackUrls(world.stack.url, world.secret, orderId, refundId, Date.parse(offerExpiresAt) + 7 * DAY_MS);
  return {
    orderId,
    refundId,
    request: {
      orderId,
      cardLastFour: '7001',
      amount,
      items: [{ itemId: '1', displayName: 'Linen shirt', sku: 'SKU-21503', unitPrice: amount, returnQty: 1 }],
      expiresAt: offerExpiresAt,
      orderDate: '2026-06-02T10:00:00.000Z',
      customer: { firstName: 'Jane', lastName: 'Doe', ...(email && { email }) },
      verificationUrl: urls.verificationUrl,
      notificationUrl: urls.notificationUrl,
      createdSince: now.toISOString(),
    },
  };
}

/** Polls `probe` until it returns a value, for at most `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Our notification endpoint behind a gate that answers 503 to the first `failFirst` requests and
 * forwards the rest byte for byte to `targetOrigin` (the real handler checks the signature).
 */
export async function flakyGate(targetOrigin: string, failFirst: number): Promise<{ origin: string; requests(): number; close(): Promise<void> }> {
  let seen = 0;
  const gate = await forwardingGate(targetOrigin, () => ++seen <= failFirst);
  return { ...gate, requests: () => seen };
}

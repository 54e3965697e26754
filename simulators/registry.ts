import { randomBytes } from 'node:crypto';
import type { ProviderId } from '../lambdas/providers/registry';
import { AddonPaymentsSimulator } from './addon-payments/simulator';
import { Ap21Simulator } from './ap21/simulator';
import { createApaceSimulator, type ApaceSimulator } from './apace/simulator';
import type { Simulator } from './kit';
import { createOpttySimulators, type OpttySimulators } from './optty/simulator';
import { createPayProSimulator, type PayProSimulator } from './paypro/simulator';

/**
 * Each provider's simulator, by its id in lambdas/providers/registry.ts (local runs and tests only;
 * never bundled into a Lambda). The local runtime (local/simulators.ts) starts every entry on one
 * loopback host, points refund-relay at it and writes the secrets file from `localSecret`, so adding
 * a provider's simulator is one entry here.
 */
export interface SimulatorOptions {
  readonly port?: number;
  readonly apaceProcessedDelayMs?: number;
  readonly apaceWebhookRetryGapMs?: number;
  readonly apacePayoutDelayMs?: number;
  readonly apaceHonoursLateCancel?: boolean;
}

export interface Started<Handle> {
  /** What tests and the demo drive (seed orders, read payouts, inject failures). */
  readonly handle: Handle;
  /** Its HTTP faces, by mount prefix on the host: the base URLs are `<host>/<prefix>`. */
  readonly mounts: Readonly<Record<string, Simulator>>;
  /** The ones that send money back for one of our refund ids (absent: it moves none of ours). */
  readonly paying?: readonly Simulator[];
  readonly close?: () => void;
}

export interface SimulatorEntry<Handle = unknown> {
  /** Random credentials for the local secrets file: the keys of the provider's secret (README, "Secrets"). */
  localSecret(): Record<string, unknown>;
  /** The simulator, accepting exactly `secret`; absent for a party that only calls us (Refundid's portal is driven by the demo and tests). */
  start?(secret: Record<string, unknown>, options: SimulatorOptions): Started<Handle>;
  /** refund-relay's environment pointing at it: variable → mount prefix. */
  readonly urls?: Readonly<Record<string, string>>;
  /** Other settings the local runtime gives refund-relay for this provider. */
  readonly env?: Readonly<Record<string, string>>;
}

const random = (bytes = 24) => randomBytes(bytes).toString('base64url');
const text = (record: Record<string, unknown>, key: string) => String(record[key]);

const apace: SimulatorEntry<ApaceSimulator> = {
  localSecret: () => ({ publicId: `local-${random(6)}`, apiSecret: random(), callbackKeys: { k1: random(32) }, callbackKeyId: 'k1' }),
  start(secret, options) {
    const sim = createApaceSimulator({
      apiKeys: [{ publicId: text(secret, 'publicId'), apiSecret: text(secret, 'apiSecret') }],
      processedDelayMs: options.apaceProcessedDelayMs ?? 2_000,
      webhookRetryGapMs: options.apaceWebhookRetryGapMs ?? 5_000,
      ...(options.apacePayoutDelayMs !== undefined && { payoutDelayMs: options.apacePayoutDelayMs }),
      ...(options.apaceHonoursLateCancel !== undefined && { honoursLateCancel: options.apaceHonoursLateCancel }),
    });
    return { handle: sim, mounts: { apace: sim }, paying: [sim], close: () => sim.close() };
  },
  urls: { APACE_API_URL: 'apace' },
};

const addonPayments: SimulatorEntry<AddonPaymentsSimulator> = {
  // 24 random bytes are exactly 32 base64url characters: the AES-256 key EPG derives from the password.
  localSecret: () => ({ merchantId: '123456', merchantPassword: random(24) }),
  start(secret) {
    const sim = new AddonPaymentsSimulator({ merchantId: text(secret, 'merchantId'), merchantPassword: text(secret, 'merchantPassword') });
    return { handle: sim, mounts: { 'addon-payments': sim }, paying: [sim] };
  },
  urls: { ADDON_PAYMENTS_API_URL: 'addon-payments' },
};

const payPro: SimulatorEntry<PayProSimulator> = {
  localSecret: () => ({ vendorAccountId: 123456, apiSecretKey: random(), ipnSecretKey: random(), ipnValidationKey: random() }),
  start(secret) {
    const sim = createPayProSimulator({ vendorAccountId: Number(secret.vendorAccountId), apiSecretKey: text(secret, 'apiSecretKey'), orders: [] });
    return { handle: sim, mounts: { paypro: sim }, paying: [sim] };
  },
  urls: { PAYPRO_API_URL: 'paypro' },
};

const optty: SimulatorEntry<OpttySimulators> = {
  localSecret: () => ({ clientId: `local-${random(6)}`, clientSecret: random(), merchantId: 'local-merchant', notificationSecret: random() }),
  start(secret) {
    const sims = createOpttySimulators({
      clientId: text(secret, 'clientId'),
      clientSecret: text(secret, 'clientSecret'),
      merchantId: text(secret, 'merchantId'),
      orders: [],
    });
    return { handle: sims, mounts: { optty: sims.api, 'optty-auth': sims.auth }, paying: [sims.api] };
  },
  urls: { OPTTY_API_URL: 'optty', OPTTY_AUTH_URL: 'optty-auth' },
};

const ap21: SimulatorEntry<Ap21Simulator> = {
  localSecret: () => ({ username: 'refund-relay', password: random(), pushApiKey: random() }),
  start(secret) {
    const sim = new Ap21Simulator({ basic: { username: text(secret, 'username'), password: text(secret, 'password') } });
    return { handle: sim, mounts: { ap21: sim } };
  },
  urls: { AP21_API_URL: 'ap21' },
  env: { AP21_COUNTRY_CODE: 'AU' },
};

/** Refundid calls us (its order fetch and RMA pushes); its portal simulator is driven by the demo and tests, against our own URL. */
const refundid: SimulatorEntry<never> = {
  localSecret: () => ({ bearerToken: random(32), apiKey: random() }),
};

export const SIMULATORS = { apace, addon_payments: addonPayments, paypro: payPro, optty, ap21, refundid } satisfies {
  readonly [Id in ProviderId]: SimulatorEntry<unknown>;
};
export type SimulatorRegistry = Readonly<Record<string, SimulatorEntry<unknown>>>;

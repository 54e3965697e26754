import { AddonPaymentsSimulator } from '../simulators/addon-payments/simulator';
import { Ap21Simulator } from '../simulators/ap21/simulator';
import { createApaceSimulator, type ApaceSimulator } from '../simulators/apace/simulator';
import { createOpttySimulators, type OpttySimulators } from '../simulators/optty/simulator';
import { createPayProSimulator, type PayProSimulator } from '../simulators/paypro/simulator';
import { startSimulatorHost, type SimulatorHost } from '../simulators/kit';
import type { generateLocalSecrets } from './secrets-file';

type Secrets = ReturnType<typeof generateLocalSecrets>;
const text = (record: Record<string, unknown>, key: string) => String(record[key]);

export interface ProviderSimulators {
  readonly host: SimulatorHost;
  readonly apace: ApaceSimulator;
  readonly addonPayments: AddonPaymentsSimulator;
  readonly paypro: PayProSimulator;
  readonly optty: OpttySimulators;
  readonly ap21: Ap21Simulator;
  /** The provider base URLs to hand refund-relay (docs/design.md §5 names). */
  readonly env: Readonly<Record<string, string>>;
  /** Money sent per our refund id, across every provider (PayPro counts per its order id). */
  payoutsByReference(): Map<string, number>;
  close(): Promise<void>;
}

/**
 * Every provider simulator on one loopback port, accepting exactly the credentials in `secrets`
 * (the local secrets file), so refund-relay talks to them as it would to the real providers.
 */
export interface SimulatorOptions {
  readonly port?: number;
  readonly apaceProcessedDelayMs?: number;
  readonly apaceWebhookRetryGapMs?: number;
  readonly apacePayoutDelayMs?: number;
  readonly apaceHonoursLateCancel?: boolean;
}

export async function startProviderSimulators(secrets: Secrets, options: SimulatorOptions = {}): Promise<ProviderSimulators> {
  const { apace: apaceSecret, addonPayments, paypro: payproSecret, optty: opttySecret, ap21: ap21Secret } = secrets;
  const apace = createApaceSimulator({
    apiKeys: [{ publicId: text(apaceSecret, 'publicId'), apiSecret: text(apaceSecret, 'apiSecret') }],
    processedDelayMs: options.apaceProcessedDelayMs ?? 2_000,
    webhookRetryGapMs: options.apaceWebhookRetryGapMs ?? 5_000,
    ...(options.apacePayoutDelayMs !== undefined && { payoutDelayMs: options.apacePayoutDelayMs }),
    ...(options.apaceHonoursLateCancel !== undefined && { honoursLateCancel: options.apaceHonoursLateCancel }),
  });
  const epg = new AddonPaymentsSimulator({ merchantId: text(addonPayments, 'merchantId'), merchantPassword: text(addonPayments, 'merchantPassword') });
  const paypro = createPayProSimulator({ vendorAccountId: Number(payproSecret.vendorAccountId), apiSecretKey: text(payproSecret, 'apiSecretKey'), orders: [] });
  const optty = createOpttySimulators({
    clientId: text(opttySecret, 'clientId'),
    clientSecret: text(opttySecret, 'clientSecret'),
    merchantId: text(opttySecret, 'merchantId'),
    orders: [],
  });
  const ap21 = new Ap21Simulator({ basic: { username: text(ap21Secret, 'username'), password: text(ap21Secret, 'password') } });
  const host = await startSimulatorHost(
    { apace, 'addon-payments': epg, paypro, optty: optty.api, 'optty-auth': optty.auth, ap21 },
    { ...(options.port !== undefined && { port: options.port }) },
  );
  return {
    host,
    apace,
    addonPayments: epg,
    paypro,
    optty,
    ap21,
    env: {
      AP21_API_URL: host.baseUrl('ap21'),
      AP21_COUNTRY_CODE: 'AU',
      APACE_API_URL: host.baseUrl('apace'),
      ADDON_PAYMENTS_API_URL: host.baseUrl('addon-payments'),
      PAYPRO_API_URL: host.baseUrl('paypro'),
      OPTTY_API_URL: host.baseUrl('optty'),
      OPTTY_AUTH_URL: host.baseUrl('optty-auth'),
    },
    payoutsByReference() {
      const total = new Map<string, number>();
      for (const sim of [apace, epg, paypro, optty.api])
        for (const [reference, count] of sim.payouts()) total.set(reference, (total.get(reference) ?? 0) + count);
      return total;
    },
    close: async () => {
      apace.close();
      await host.close();
    },
  };
}

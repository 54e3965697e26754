import type { ProviderId } from '../lambdas/providers/registry';
import type { AddonPaymentsSimulator } from '../simulators/addon-payments/simulator';
import type { Ap21Simulator } from '../simulators/ap21/simulator';
import type { ApaceSimulator } from '../simulators/apace/simulator';
import { startSimulatorHost, type Simulator, type SimulatorHost } from '../simulators/kit';
import type { OpttySimulators } from '../simulators/optty/simulator';
import type { PayProSimulator } from '../simulators/paypro/simulator';
import { SIMULATORS, type SimulatorOptions, type SimulatorRegistry } from '../simulators/registry';
import { secretNameOf } from '../lambdas/providers/registry';
import type { generateLocalSecrets } from './secrets-file';

export type { SimulatorOptions } from '../simulators/registry';

type Secrets = ReturnType<typeof generateLocalSecrets>;

export interface ProviderSimulators {
  readonly host: SimulatorHost;
  readonly apace: ApaceSimulator;
  readonly addonPayments: AddonPaymentsSimulator;
  readonly paypro: PayProSimulator;
  readonly optty: OpttySimulators;
  readonly ap21: Ap21Simulator;
  /** Every started simulator's handle, by provider id (simulators/registry.ts), including any a test added. */
  readonly byId: Readonly<Record<string, unknown>>;
  /** The provider base URLs to hand refund-relay (docs/design.md §5 names). */
  readonly env: Readonly<Record<string, string>>;
  /** Money sent per our refund id, across every provider (PayPro counts per its order id). */
  payoutsByReference(): Map<string, number>;
  close(): Promise<void>;
}

/**
 * Every provider simulator of simulators/registry.ts (or of `registry`, for a test that adds one)
 * on one loopback port, accepting exactly the credentials in `secrets` (the local secrets file), so
 * refund-relay talks to them as it would to the real providers.
 */
export async function startProviderSimulators(
  secrets: Secrets,
  options: SimulatorOptions = {},
  registry: SimulatorRegistry = SIMULATORS,
): Promise<ProviderSimulators> {
  const mounts: Record<string, Simulator> = {};
  const paying: Simulator[] = [];
  const closers: (() => void)[] = [];
  const byId: Record<string, unknown> = {};
  for (const [id, entry] of Object.entries(registry)) {
    if (!entry.start) continue;
    const secret = (secrets as Record<string, Record<string, unknown>>)[secretNameOf(id as ProviderId)] ?? {};
    const started = entry.start(secret, options);
    byId[id] = started.handle;
    Object.assign(mounts, started.mounts);
    paying.push(...(started.paying ?? []));
    if (started.close) closers.push(started.close);
  }
  const host = await startSimulatorHost(mounts, { ...(options.port !== undefined && { port: options.port }) });
  const env: Record<string, string> = {};
  for (const entry of Object.values(registry)) {
    for (const [variable, prefix] of Object.entries(entry.urls ?? {})) env[variable] = host.baseUrl(prefix);
    Object.assign(env, entry.env);
  }
  return {
    host,
    apace: byId.apace as ApaceSimulator,
    addonPayments: byId.addon_payments as AddonPaymentsSimulator,
    paypro: byId.paypro as PayProSimulator,
    optty: byId.optty as OpttySimulators,
    ap21: byId.ap21 as Ap21Simulator,
    byId,
    env,
    payoutsByReference() {
      const total = new Map<string, number>();
      for (const sim of paying) for (const [reference, count] of sim.payouts()) total.set(reference, (total.get(reference) ?? 0) + count);
      return total;
    },
    close: async () => {
      closers.forEach((close) => close());
      await host.close();
    },
  };
}

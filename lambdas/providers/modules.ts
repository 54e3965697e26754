import { addonPayments } from './addon-payments/provider';
import { ap21 } from './ap21/provider';
import { apace } from './apace/provider';
import { optty } from './optty/provider';
import { payPro } from './paypro/provider';
import type { ProviderModule } from './provider-module';
import { refundid } from './refundid/provider';
import type { ProviderId } from './registry';

/**
 * Each provider's `provider.ts`, by its id in ./registry.ts. The type makes the compiler ask for
 * an entry here as soon as a provider is added there. What it costs a Lambda to import: each
 * provider's settings loader; connectors and inbound checks load on first use.
 */
export const PROVIDER_MODULES: { readonly [Id in ProviderId]: ProviderModule<Id> } = {
  apace,
  addon_payments: addonPayments,
  paypro: payPro,
  optty,
  ap21,
  refundid,
};

/** The modules as a list, for the composition roots (the dispatcher's, the local runtime's). */
export const providerModules = (): readonly ProviderModule[] => Object.values(PROVIDER_MODULES);

import type { ProviderModule } from '../provider-module';

/** Ap21 (Apparel21): the source of orders and returns, read by the poller and pushed to `POST /ap21/returns` (docs/providers.md §3). */
export const ap21: ProviderModule<'ap21'> = {
  id: 'ap21',
  secretSchema: async () => (await import('./schemas.js')).ap21SecretSchema,
  inbound: async () => (await import('./inbound.js')).ap21Inbound,
};

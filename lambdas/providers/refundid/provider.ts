import type { ProviderModule } from '../provider-module';

/** Refundid: a returns portal that reads orders from us and pushes its RMAs; it pays the customer itself (docs/providers.md §2). */
export const refundid: ProviderModule<'refundid'> = {
  id: 'refundid',
  secretSchema: async () => (await import('./schemas.js')).refundidSecretSchema,
  inbound: async () => (await import('./inbound.js')).refundidInbound,
};

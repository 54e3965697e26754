import type { ProviderModule } from '../provider-module';

/** Apace: instant refund offers; it calls our verification URL and webhook (docs/providers.md §1). Its client is built in functions/dispatch-runtime.ts. */
export const apace: ProviderModule<'apace'> = {
  id: 'apace',
  secretSchema: async () => (await import('./schemas.js')).apaceSecretSchema,
  inbound: async () => (await import('./inbound.js')).apaceInbound,
};

import type { ProviderModule } from '../provider-module';
import { loadOpttyConfig, type OpttyConfig } from './config';

/** Optty: card reversal through its refund API, with an OAuth token first (docs/providers.md §6). */
export const optty: ProviderModule<'optty'> = {
  id: 'optty',
  secretSchema: async () => (await import('./schemas.js')).opttySecretSchema,
  inbound: async () => (await import('./inbound.js')).opttyInbound,
  reversal: {
    enabledBy: 'OPTTY_API_URL',
    loadSettings: loadOpttyConfig,
    // A refund call may first need an access token: two requests.
    callTimeoutMs: (settings: OpttyConfig) => 2 * settings.timeoutMs,
    async connect(settings: OpttyConfig, secret) {
      const [{ OpttyConnector }, { opttySecretSchema }] = await Promise.all([import('./client.js'), import('./schemas.js')]);
      return new OpttyConnector(secret(opttySecretSchema), settings);
    },
  },
};

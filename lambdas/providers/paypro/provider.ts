import type { ProviderModule } from '../provider-module';
import { loadPayProConnectorConfig, type PayProConnectorConfig } from './config';

/** PayPro Global: card reversal by DoRefund, settled by its IPN (docs/providers.md §5). */
export const payPro: ProviderModule<'paypro'> = {
  id: 'paypro',
  secretSchema: async () => (await import('./schemas.js')).payProSecretSchema,
  inbound: async () => (await import('./inbound.js')).payProInbound,
  reversal: {
    enabledBy: 'PAYPRO_API_URL',
    loadSettings: loadPayProConnectorConfig,
    callTimeoutMs: (settings: PayProConnectorConfig) => settings.timeoutMs,
    async connect(settings: PayProConnectorConfig, secret) {
      const [{ PayProConnector }, { payProSecretSchema }] = await Promise.all([import('./client.js'), import('./schemas.js')]);
      return new PayProConnector(secret(payProSecretSchema), settings);
    },
  },
};

import type { ProviderModule } from '../provider-module';
import { loadAddonPaymentsConfig, type AddonPaymentsConfig } from './config';

/** Addon Payments (EPG): card reversal by rebate (docs/providers.md §4). */
export const addonPayments: ProviderModule<'addon_payments'> = {
  id: 'addon_payments',
  secretSchema: async () => (await import('./schemas.js')).addonPaymentsSecretSchema,
  inbound: async () => (await import('./inbound.js')).addonPaymentsInbound,
  reversal: {
    enabledBy: 'ADDON_PAYMENTS_API_URL',
    loadSettings: loadAddonPaymentsConfig,
    callTimeoutMs: (settings: AddonPaymentsConfig) => settings.timeoutMs,
    async connect(settings: AddonPaymentsConfig, secret) {
      const [{ AddonPaymentsConnector }, { addonPaymentsSecretSchema }] = await Promise.all([import('./client.js'), import('./schemas.js')]);
      return new AddonPaymentsConnector(settings, secret(addonPaymentsSecretSchema));
    },
  },
};

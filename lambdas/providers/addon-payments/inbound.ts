import type { InboundVerifier } from '../provider-module';
import { addonPaymentsSecretSchema, type AddonPaymentsSecret } from './schemas';

/**
 * EPG's status notifications (its `statusURL`) carry no signature any SDK verifies (UNCONFIRMED,
 * docs/providers.md §4), so there is nothing to check: a notification is only a hint that makes the
 * dispatcher ask EPG's own record sooner, and never moves money by itself (docs/design.md §3).
 */
export const addonPaymentsInbound: InboundVerifier<AddonPaymentsSecret, void> = {
  provider: 'addon_payments',
  secretSchema: addonPaymentsSecretSchema,
  loadSettings: () => undefined,
  verify: async () => undefined,
};

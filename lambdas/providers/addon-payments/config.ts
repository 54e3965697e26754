import { parseEnvironment, wholeWithin } from '../../commons/config';
import * as z from 'zod/mini';

/**
 * Non-secret EPG settings from the environment. The base URL has no default in code: staging is
 * https://checkout-stg.addonpayments.com and production https://checkout.addonpayments.com
 * (docs/providers.md §4); the stage config sets one of them.
 */
const schema = z.object({
  ADDON_PAYMENTS_API_URL: z.url(),
  ADDON_PAYMENTS_TIMEOUT_MS: wholeWithin(10_000, 1, 60_000),
  /**
   * Ap21's payment block does not say which EPG payment solution took the original payment, and
   * EPG wants "the value returned by the original payment"; one merchant usually takes cards
   * through one solution (`creditcards`, `caixapucpuce`, …), so it is per-stage configuration.
   */
  ADDON_PAYMENTS_PAYMENT_SOLUTION: z._default(z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/)), 'creditcards'),
});

export interface AddonPaymentsConfig {
  /** Without a trailing slash, e.g. `https://checkout.addonpayments.com`. */
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly paymentSolution: string;
}

export function loadAddonPaymentsConfig(env: NodeJS.ProcessEnv = process.env): AddonPaymentsConfig {
  const settings = parseEnvironment(schema, env, 'Addon Payments ');
  return {
    apiUrl: settings.ADDON_PAYMENTS_API_URL.replace(/\/+$/, ''),
    timeoutMs: settings.ADDON_PAYMENTS_TIMEOUT_MS,
    paymentSolution: settings.ADDON_PAYMENTS_PAYMENT_SOLUTION,
  };
}

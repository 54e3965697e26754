import { ConfigurationError, parseEnvironment, wholeWithin } from '../../commons/config';
import { allowlistSetting } from '../../commons/source-ip';
import * as z from 'zod/mini';

/**
 * Settings of the two routes Refundid calls (docs/providers.md §2). Refundid's own API is not called,
 * so REFUNDID_API_URL is not read here.
 */
const schema = z.object({
  /**
   * Addresses (or CIDR blocks) Refundid calls from, comma-separated: production 34.87.219.187,
   * sandbox 34.116.107.90 (the addresses behind rapi[.sandbox].refundid.com). The CDK stack fills it
   * from the stage's `ipAllowlists['/refundid/order']`. Required: unset, the routes refuse to serve.
   */
  REFUNDID_ALLOWED_IPS: z.string().check(z.minLength(1, 'must list the addresses Refundid calls from')),
  /**
   * How long an Ap21 order read for the order fetch is reused by this container (0: never). Only
   * Ap21's view (titles, prices, e-mail) is cached; returnable quantities come from the ledger on
   * every call.
   */
  REFUNDID_ORDER_CACHE_SECONDS: wholeWithin(60, 0, 3600),
  REFUNDID_ORDER_CACHE_MAX_ENTRIES: wholeWithin(1000, 1, 100_000),
});

export interface RefundidConfig {
  readonly allowedIps: readonly string[];
  readonly orderCacheTtlMs: number;
  readonly orderCacheMaxEntries: number;
}

export function loadRefundidConfig(env: NodeJS.ProcessEnv = process.env): RefundidConfig {
  const settings = parseEnvironment(schema, env, 'Refundid ');
  const allowedIps = allowlistSetting('REFUNDID_ALLOWED_IPS', settings.REFUNDID_ALLOWED_IPS, 'Refundid ');
  if (allowedIps.length === 0) throw new ConfigurationError('bad Refundid environment: REFUNDID_ALLOWED_IPS lists no address');
  return {
    allowedIps,
    orderCacheTtlMs: settings.REFUNDID_ORDER_CACHE_SECONDS * 1000,
    orderCacheMaxEntries: settings.REFUNDID_ORDER_CACHE_MAX_ENTRIES,
  };
}

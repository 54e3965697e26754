import { isIP } from 'node:net';
import { ConfigurationError, parseEnvironment, positiveWhole, regexSetting } from '../../commons/config';
import * as z from 'zod/mini';

/**
 * PayPro Global settings from the environment. The connector and the IPN route run in different
 * Lambdas, so each reads only what it needs: the IPN route has no reason to require the API URL.
 */
/**
 * What a `refundNotice` says when the order was refunded before. The wording is UNCONFIRMED
 * (docs/providers.md §5), so the default is deliberately broad: a refusal mistaken for "already
 * refunded" only parks the refund for an operator, while an "already refunded" mistaken for a
 * refusal could send the money a second time through another channel.
 */
export const DEFAULT_ALREADY_REFUNDED_PATTERN = String.raw`\b(already|previously|duplicate)\b|\brefunded\b`;

const connectorSchema = z.object({
  /** Base of the PayPro API, e.g. https://store.payproglobal.com/api (documentation only). */
  PAYPRO_API_URL: z.url(),
  PAYPRO_TIMEOUT_MS: positiveWhole(10_000),
  PAYPRO_ALREADY_REFUNDED_PATTERN: z._default(regexSetting, DEFAULT_ALREADY_REFUNDED_PATTERN),
});

export interface PayProConnectorConfig {
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly alreadyRefunded: RegExp;
}

/** PayPro's documented IPN source addresses (docs/providers.md §5). */
export const DOCUMENTED_IPN_SOURCE_IPS = ['198.199.123.239', '157.230.8.40', '2604:a880:400:d0::1843:7001', '2604:a880:400:d1::b6c:c001'];

const ipnSchema = z.object({
  PAYPRO_IPN_SOURCE_IPS: z.optional(z.string()),
  /**
   * Accept IPNs flagged TEST_MODE=1 (amounts 0, HASH = MD5("1")). Off by default: a test IPN must
   * never settle a real refund.
   */
  PAYPRO_IPN_ALLOW_TEST_MODE: z._default(z.enum(['true', 'false']), 'false'),
});

export interface PayProIpnConfig {
  readonly sourceIps: readonly string[];
  readonly allowTestMode: boolean;
}

function parse<T>(schema: z.ZodMiniType<T>, env: NodeJS.ProcessEnv): T {
  return parseEnvironment(schema, env, 'PayPro ');
}

export function loadPayProConnectorConfig(env: NodeJS.ProcessEnv = process.env): PayProConnectorConfig {
  const config = parse(connectorSchema, env);
  return {
    apiUrl: config.PAYPRO_API_URL.replace(/\/+$/, ''),
    timeoutMs: config.PAYPRO_TIMEOUT_MS,
    alreadyRefunded: new RegExp(config.PAYPRO_ALREADY_REFUNDED_PATTERN, 'i'),
  };
}

export function loadPayProIpnConfig(env: NodeJS.ProcessEnv = process.env): PayProIpnConfig {
  const config = parse(ipnSchema, env);
  const sourceIps = (config.PAYPRO_IPN_SOURCE_IPS ?? DOCUMENTED_IPN_SOURCE_IPS.join(','))
    .split(',')
    .map((ip) => ip.trim())
    .filter(Boolean);
  if (sourceIps.length === 0) throw new ConfigurationError('PAYPRO_IPN_SOURCE_IPS lists no address');
  const invalid = sourceIps.filter((ip) => isIP(ip) === 0);
  if (invalid.length > 0) throw new ConfigurationError(`PAYPRO_IPN_SOURCE_IPS has entries that are not IP addresses: ${invalid.join(', ')}`);
  return { sourceIps, allowTestMode: config.PAYPRO_IPN_ALLOW_TEST_MODE === 'true' };
}

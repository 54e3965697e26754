import { parseEnvironment, positiveWhole, regexSetting } from '../../commons/config';
import * as z from 'zod/mini';

/**
 * Optty settings from the environment. Hosts (documentation only): API https://api.optty.com
 * (sandbox https://api.qa.optty.com), auth https://auth.optty.com (sandbox
 * https://auth.qa.optty.com); the token endpoint is `${OPTTY_AUTH_URL}/token`.
 */
/**
 * What Optty says when a refundReference is used a second time. Its real behaviour is
 * UNCONFIRMED beyond "unique refundReference": it may replay the first result (handled as a normal
 * answer) or refuse with a 400/409 whose wording is unknown. Such a refusal is answered `unknown`
 * so status sync finds the first refund instead of an operator seeing a failure.
 */
export const DEFAULT_DUPLICATE_REFERENCE_PATTERN = String.raw`already|duplicate|exists|unique|used before`;

const schema = z.object({
  OPTTY_API_URL: z.url(),
  OPTTY_AUTH_URL: z.url(),
  OPTTY_TIMEOUT_MS: positiveWhole(10_000),
  /** Tokens are refreshed this long before Optty says they expire (clock skew, slow calls). */
  OPTTY_TOKEN_REFRESH_MARGIN_SECONDS: z._default(z.coerce.number().check(z.int(), z.nonnegative()), 60),
  OPTTY_DUPLICATE_REFERENCE_PATTERN: z._default(regexSetting, DEFAULT_DUPLICATE_REFERENCE_PATTERN),
});

export interface OpttyConfig {
  readonly apiUrl: string;
  readonly authUrl: string;
  readonly timeoutMs: number;
  readonly refreshMarginMs: number;
  readonly duplicateReference: RegExp;
}

export function loadOpttyConfig(env: NodeJS.ProcessEnv = process.env): OpttyConfig {
  const config = parseEnvironment(schema, env, 'Optty ');
  return {
    apiUrl: config.OPTTY_API_URL.replace(/\/+$/, ''),
    authUrl: config.OPTTY_AUTH_URL.replace(/\/+$/, ''),
    timeoutMs: config.OPTTY_TIMEOUT_MS,
    refreshMarginMs: config.OPTTY_TOKEN_REFRESH_MARGIN_SECONDS * 1000,
    duplicateReference: new RegExp(config.OPTTY_DUPLICATE_REFERENCE_PATTERN, 'i'),
  };
}

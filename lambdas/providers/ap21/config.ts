import * as z from 'zod/mini';
import { parseEnvironment, wholeWithin } from '../../commons/config';
import { currencyExponent } from '../../domain/money';

/**
 * Non-secret Ap21 settings, per stage (Lambda environment) or per engineer (local environment).
 * Credentials live in the `ap21` secret (see `schemas.ts`, `ap21SecretSchema`).
 */
const isTimeZone = (zone: string) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};

const isCurrency = (code: string) => {
  try {
    currencyExponent(code);
    return true;
  } catch {
    return false;
  }
};

const schema = z.object({
  /** The retailer's Retail API base, e.g. `https://{host}/RetailAPI/` (guide "Base URL"). */
  AP21_API_URL: z.url({ protocol: /^https?$/ }),
  /** Mandatory query parameter on every call; it selects pricing and tax (guide "API calls"). */
  AP21_COUNTRY_CODE: z.string().check(z.regex(/^[A-Za-z0-9]{1,10}$/)),
  /**
   * Sent as `Accept: version_<n>`. Without it Ap21 returns only version 1 elements, and the
   * `Payments` block of a return (the proof that Refundid already refunded it) exists only from
   * version 4.0 (docs/providers.md §3, Retail API guide pp.146–149): below 4.0 a Refundid-paid return would look unpaid. An
   * installation without 4.0 answers API error 5045 (major version not supported, per the PHP
   * SDK's notes); on such a stage set 2.0, and returns then read as `payments_not_visible`.
   */
  AP21_API_VERSION: z._default(z.string().check(z.regex(/^\d{1,2}\.\d$/)), '4.0'),
  /** Client-side throttle. The official limit is UNCONFIRMED; the SDK keeps 0.5 s between calls. */
  AP21_MAX_CALLS_PER_SECOND: z._default(z.coerce.number().check(z.positive(), z.lte(50)), 2),
  AP21_TIMEOUT_MS: wholeWithin(15_000, 100, 120_000),
  /**
   * IANA zone of the wall-clock times Ap21 reads and writes (`updatedAfter`, `OrderDateTime`
   * carry no offset; guide example `2020-12-01T11:33:07`). UNCONFIRMED: the guide does not say
   * which zone. The default UTC only over-fetches when Ap21 runs east of UTC (AU/NZ).
   */
  AP21_TIME_ZONE: z._default(z.string().check(z.refine(isTimeZone, 'not an IANA time zone')), 'UTC'),
  /** A web store has one currency (guide "Assumptions"); used when a document leaves `Currency/Code` empty. */
  AP21_CURRENCY: z._default(z.string().check(z.refine(isCurrency, 'not an ISO 4217 currency code')), 'AUD'),
  /**
   * How to list an order's returns. UNCONFIRMED: the guide documents only the single-return GET;
   * this collection path is the natural REST sibling. `{personId}` and `{orderId}` are filled in.
   */
  AP21_RETURNS_LIST_PATH: z._default(
    z.string().check(
      z.regex(/^[A-Za-z0-9/{}_.-]+$/),
      z.refine((path) => path.includes('{personId}') && path.includes('{orderId}'), 'must contain {personId} and {orderId}'),
    ),
    'Persons/{personId}/Orders/{orderId}/Returns',
  ),
});

export interface Ap21Config {
  readonly apiUrl: string;
  readonly countryCode: string;
  readonly apiVersion: string;
  readonly maxCallsPerSecond: number;
  readonly timeoutMs: number;
  readonly timeZone: string;
  readonly currency: string;
  readonly returnsListPath: string;
}

export function loadAp21Config(env: NodeJS.ProcessEnv = process.env): Ap21Config {
  const config = parseEnvironment(schema, env, 'Ap21 ');
  return {
    apiUrl: config.AP21_API_URL,
    countryCode: config.AP21_COUNTRY_CODE,
    apiVersion: config.AP21_API_VERSION,
    maxCallsPerSecond: config.AP21_MAX_CALLS_PER_SECOND,
    timeoutMs: config.AP21_TIMEOUT_MS,
    timeZone: config.AP21_TIME_ZONE,
    currency: config.AP21_CURRENCY,
    returnsListPath: config.AP21_RETURNS_LIST_PATH,
  };
}

/** Return payments (the Refundid proof) are visible only from payload version 4.0. */
export function seesReturnPayments(apiVersion: string): boolean {
  return Number.parseFloat(apiVersion) >= 4;
}

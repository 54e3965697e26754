import { bounded, MAX_MESSAGE_CHARS } from '../../commons/bounded';
import { parseXml, childText } from '../../commons/xml';
import { isRetryableStatus } from '../outbound';
import type { Money } from '../../domain/money';
import type { Ap21Payment } from './schemas';

/**
 * What Ap21 answers mean for us. Every client method either returns a typed value or throws one
 * of the `Ap21Error` classes below, never anything raw; `retryable` is the only thing a caller
 * needs to decide between "try again later with the same request" and "stop and flag it".
 */
export abstract class Ap21Error extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Ap21 is down, throttling, failing for now, or did not answer. `ambiguous` means it may have
 * acted (a POST that timed out or failed with 5xx): retry with the same `OrderNumber`, and a
 * 5052 then proves the first attempt landed.
 */
export class Ap21UnavailableError extends Ap21Error {
  readonly retryable = true;
  constructor(
    message: string,
    readonly details: { readonly status?: number; readonly code?: number; readonly ambiguous: boolean; readonly retryAfterMs?: number },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 401: our credentials are wrong or revoked; retrying cannot help until the secret changes. */
export class Ap21AuthenticationError extends Ap21Error {
  readonly retryable = false;
}

/** Ap21 refused the request with an API error code (403/400 `<Ap21Error>`): permanent. */
export class Ap21RejectedError extends Ap21Error {
  readonly retryable = false;
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    readonly description: string,
  ) {
    super(`Ap21 refused the request (HTTP ${status}${code !== undefined ? `, API error ${code}` : ''}): ${bounded(description, MAX_MESSAGE_CHARS)}`);
  }
}

export class Ap21NotFoundError extends Ap21Error {
  readonly retryable = false;
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

/** Ap21 answered 2xx with a document we cannot read safely (malformed XML, DTD, missing fields). */
export class Ap21ResponseError extends Ap21Error {
  readonly retryable = false;
  /** The start of the document, when it could not be read at all: what an operator looks at. */
  readonly document?: string;

  constructor(message: string, details: { readonly document?: string } = {}) {
    super(message);
    if (details.document !== undefined) this.document = bounded(details.document, MAX_DOCUMENT_CHARS);
  }
}

/** Characters of an unreadable answer kept on its error. */
const MAX_DOCUMENT_CHARS = 12_000;

/** Our own request was invalid and was not sent (e.g. a positive return quantity). */
export class Ap21InvalidRequestError extends Ap21Error {
  readonly retryable = false;
}

/** API error codes from the Retail API Guide 2025.1 (pp.125, 143, 149; overview table). */
export const AP21_ERROR_CODES = {
  noDataFound: 5008,
  sqlError: 5015,
  countryNotSetUp: 5029,
  invalidPagination: 5034,
  duplicateOrderNumber: 5052,
  returnReasonMissing: 5084,
  returnReasonInvalid: 5085,
  cannotDeserialise: 5121,
  contentTypeNotXml: 5122,
  origOrderNumberInvalid: 5133,
  personIdMissing: 5135,
  personIdMismatch: 5136,
  origOrderNumberMissing: 5138,
  skuNotOnOriginalOrder: 5139,
  quantityNotNegative: 5140,
  conNoteTooLong: 5141,
  carrierTooLong: 5142,
  quantityMissingOrZero: 5143,
  invalidStockUpdate: 5211,
  updatedAfterRequired: 5421,
} as const;

/** A database failure inside Ap21 says nothing about our request, so it is worth another try. */
const RETRYABLE_API_CODES: ReadonlySet<number> = new Set([AP21_ERROR_CODES.sqlError]);

export interface Ap21ErrorBody {
  readonly code?: number;
  readonly description: string;
}

/**
 * Reads `<Ap21Error><ErrorCode>…</ErrorCode><Description>…</Description></Ap21Error>` (the shape
 * the PHP SDK parses; the guide lists codes but shows no body). IIS may wrap errors in an HTML
 * page, which the strict XML reader refuses, so the two elements are then looked up by pattern.
 */
export function readAp21ErrorBody(text: string): Ap21ErrorBody | undefined {
  try {
    const root = parseXml(text);
    if (/^Ap21Error$/i.test(root.name)) {
      const code = Number.parseInt(childText(root, 'ErrorCode') ?? '', 10);
      return { ...(Number.isSafeInteger(code) && { code }), description: (childText(root, 'Description') ?? '').slice(0, 500) };
    }
  } catch {
    // Not well-formed XML: fall through to the pattern lookup below.
  }
  const code = /<ErrorCode>\s*(\d{1,9})\s*<\/ErrorCode>/i.exec(text)?.[1];
  if (!code) return undefined;
  const description = /<Description>([^<]{0,500})<\/Description>/i.exec(text)?.[1]?.trim() ?? '';
  return { code: Number(code), description };
}

function retryAfterMs(headers: Headers): number | undefined {
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 3600) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.min(at - Date.now(), 3600_000)) : undefined;
}

/**
 * The typed error for a non-2xx answer. `mayHaveActed` is true for requests that change state
 * (POST): a 5xx there may come after Ap21 stored the return.
 */
export function errorForResponse(response: { status: number; headers: Headers; text: string }, what: string, mayHaveActed: boolean): Ap21Error {
  const { status } = response;
  const body = readAp21ErrorBody(response.text);
  if (status === 401) return new Ap21AuthenticationError(`Ap21 refused our credentials (HTTP 401) for ${what}`);
  if (status === 404)
    return new Ap21NotFoundError(`Ap21 answered 404 for ${what}${body?.code ? ` (API error ${body.code})` : ' (check AP21_API_URL)'}`, body?.code);
  if (isRetryableStatus(status) || (body?.code !== undefined && RETRYABLE_API_CODES.has(body.code))) {
    const after = retryAfterMs(response.headers);
    return new Ap21UnavailableError(`Ap21 could not serve ${what} (HTTP ${status}${body?.code ? `, API error ${body.code}` : ''})`, {
      status,
      ...(body?.code !== undefined && { code: body.code }),
      ambiguous: mayHaveActed && status !== 429,
      ...(after !== undefined && { retryAfterMs: after }),
    });
  }
  return new Ap21RejectedError(status, body?.code, body?.description || `unexpected answer to ${what}`);
}

/**
 * Whether Ap21 already recorded money going back for a return (or a negative order).
 * - `refunded_via_refundid`: a negative payment whose MerchantId or CardType is Refundid
 *   (docs/providers.md §3, Retail API guide p.147–149; Refundid's Ap21 set-up uses merchant id `Refundid`, card type `REFUNDID`).
 *   Record it as paid through Refundid; never refund it again.
 * - `refunded_in_ap21`: a negative payment through another gateway, e.g. a return posted with
 *   `StockUpdate=False`, which Ap21 refunds to the original payment itself (docs/providers.md §3, Retail API guide p.145). Also
 *   never refunded again by us.
 * - `payments_not_visible`: the document was read below payload version 4.0, where Ap21 leaves
 *   a return's payments out; "no payments" then proves nothing, so nothing may be refunded.
 */
export type Ap21RefundState =
  | { readonly kind: 'refunded_via_refundid'; readonly refunded: Money; readonly payments: readonly Ap21Payment[] }
  | { readonly kind: 'refunded_in_ap21'; readonly refunded: Money; readonly payments: readonly Ap21Payment[] }
  | { readonly kind: 'not_refunded' }
  | { readonly kind: 'payments_not_visible' };

export function isRefundidPayment(payment: Ap21Payment): boolean {
  const named = (value: string | undefined) => value?.trim().toLowerCase() === 'refundid';
  return payment.amount.minor < 0 && (named(payment.merchantId) || named(payment.cardType));
}

export function refundStateOf(document: {
  readonly currency: string;
  readonly payments: readonly Ap21Payment[];
  readonly paymentsVisible: boolean;
}): Ap21RefundState {
  if (!document.paymentsVisible) return { kind: 'payments_not_visible' };
  const refunds = document.payments.filter((payment) => payment.amount.minor < 0);
  if (refunds.length === 0) return { kind: 'not_refunded' };
  const refunded: Money = { minor: refunds.reduce((sum, payment) => sum - payment.amount.minor, 0), currency: document.currency };
  return { kind: refunds.some(isRefundidPayment) ? 'refunded_via_refundid' : 'refunded_in_ap21', refunded, payments: refunds };
}

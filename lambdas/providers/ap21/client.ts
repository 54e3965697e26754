import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import { describeIssues } from '../../commons/validation';
import { childElements, DEFAULT_XML_LIMITS, parseXml, quoted, toXml, XmlError, type XmlElement, type XmlLimits } from '../../commons/xml';
import { formatDecimal } from '../../domain/money';
import { callProvider, ProviderCallError, type OutboundResponse } from '../outbound';
import { seesReturnPayments, type Ap21Config } from './config';
import {
  readEach,
  readOrder,
  readReturn,
  toAp21DateTime,
  type Ap21Order,
  type Ap21OrderPage,
  type Ap21Read,
  type Ap21Return,
  type Ap21Secret,
  type ReadContext,
} from './schemas';
import {
  AP21_ERROR_CODES,
  Ap21InvalidRequestError,
  Ap21RejectedError,
  Ap21ResponseError,
  Ap21UnavailableError,
  errorForResponse,
  readAp21ErrorBody,
} from './statuses';

/** Where the `ap21` secret comes from; `SecretReader<Ap21Secret>` is one. */
export interface Ap21Credentials {
  get(): Promise<Ap21Secret>;
  /** The secret re-read after a 401 (it may have rotated), or undefined when a re-read is not due. */
  refresh(): Promise<Ap21Secret | undefined>;
}

export interface Ap21PageRequest {
  /** 1-based row to start at (guide: `startRow`). */
  readonly startRow: number;
  readonly pageRows: number;
}

export type Ap21PostReturnResult =
  /** Ap21 stored the return; `returnId` when its answer carried the return's URL. */
  | { readonly kind: 'created'; readonly returnId?: string }
  /** 5052: a return with this OrderNumber exists, i.e. an earlier attempt of this POST landed. */
  | { readonly kind: 'already_exists' };

const plainText = (max: number) =>
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point of this pattern
  z.string().check(z.minLength(1), z.maxLength(max), z.regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters'));
const numericId = z.string().check(z.regex(/^\d{1,22}$/, 'expected a numeric Ap21 id'));

const newReturnSchema = z.object({
  /** Our idempotency key: unique per return, so a retried POST meets 5052 instead of a second return. */
  orderNumber: plainText(30),
  /** The original web order's OrderNumber. */
  origOrderNumber: plainText(30),
  lines: z
    .array(
      z.object({
        skuId: numericId,
        quantity: z.int().check(z.lt(0, 'returned quantities must be negative'), z.gte(-100_000)),
        returnReasonId: numericId,
        returnReasonNotes: z.optional(plainText(250)),
        carrier: z.optional(plainText(12)),
        conNote: z.optional(plainText(50)),
      }),
    )
    .check(z.minLength(1), z.maxLength(500)),
  /** Version 4.0 refund payment, e.g. MerchantId/CardType `Refundid` (docs/providers.md §3, Retail API guide pp.147–149). */
  payments: z.optional(
    z
      .array(
        z.object({
          origin: plainText(50),
          amount: z.object({
            minor: z.int().check(z.lt(0, 'a refund payment on a return is negative')),
            currency: z.string().check(z.regex(/^[A-Z]{3}$/)),
          }),
          merchantId: z.optional(plainText(100)),
          cardType: z.optional(plainText(250)),
          stan: z.optional(plainText(250)),
          reference: z.optional(plainText(250)),
        }),
      )
      .check(z.maxLength(10)),
  ),
});

export type NewAp21Return = z.input<typeof newReturnSchema>;

const pageSchema = z.object({
  startRow: z.int().check(z.gte(1), z.lte(10_000_000)),
  pageRows: z.int().check(z.gte(1), z.lte(1000)),
});

function validInput<T>(schema: z.ZodMiniType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new Ap21InvalidRequestError(`${what} is invalid, not sent to Ap21: ${describeIssues(result.error.issues)}`);
  return result.data;
}

/**
 * Spaces calls `intervalMs` apart by handing out time slots in call order: each caller sleeps
 * until its own slot (a timer, no polling), so concurrent callers go strictly first come, first served.
 */
class CallSpacer {
  private nextSlotAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly intervalMs: number) {}

  async take(): Promise<void> {
    const now = performance.now();
    const slot = Math.max(now, this.nextSlotAt);
    this.nextSlotAt = slot + this.intervalMs;
    if (slot > now) await sleep(Math.ceil(slot - now));
  }
}

function authHeaders(secret: Ap21Secret): Record<string, string> {
  if (secret.accessToken !== undefined) return { 'X-Ap21-Access-Token': secret.accessToken };
  return { Authorization: `Basic ${Buffer.from(`${secret.username}:${secret.password}`, 'utf8').toString('base64')}` };
}

/**
 * A 404 that means "nothing to list": Ap21's 5008 "No data found", or an empty body. Any other
 * 404 (an IIS page, another code) is thrown, so a wrong base URL or list path cannot pass for
 * "no changes" or "no returns".
 */
function isNoDataFound(response: OutboundResponse): boolean {
  return response.status === 404 && (response.text.trim() === '' || readAp21ErrorBody(response.text)?.code === AP21_ERROR_CODES.noDataFound);
}

function totalRowsOf(root: XmlElement): number | undefined {
  const value = root.attributes.TotalRows?.trim();
  return value && /^\d{1,9}$/.test(value) ? Number(value) : undefined;
}

/**
 * The Ap21 Retail API client (guide 2025.1, sections Orders and Returns). Every method returns a
 * typed value or throws an `Ap21Error` (see statuses.ts) whose `retryable` tells the poller what
 * to do; it never retries by itself, except once after a 401 with a freshly read secret. Calls
 * are spaced to at most AP21_MAX_CALLS_PER_SECOND per instance, in the order they were made.
 */
export class Ap21Client {
  private readonly spacer: CallSpacer;
  private readonly readContext: ReadContext;
  private readonly baseUrl: string;

  constructor(
    private readonly config: Ap21Config,
    private readonly credentials: Ap21Credentials,
    /** How large and deep an answer may be (default: 2 MiB, 32 levels; the element count is not limited). */
    private readonly xmlLimits: XmlLimits = DEFAULT_XML_LIMITS,
  ) {
    this.spacer = new CallSpacer(1000 / config.maxCallsPerSecond);
    this.readContext = { currency: config.currency, timeZone: config.timeZone };
    this.baseUrl = config.apiUrl.endsWith('/') ? config.apiUrl : `${config.apiUrl}/`;
  }

  /**
   * `GET /Orders/?updatedAfter=` — web orders created or changed after `updatedAfter` (ISO),
   * read from the sales order tables, so with their latest status (docs/providers.md §3, Retail API guide p.127). The time is
   * sent as Ap21's offset-less wall clock in AP21_TIME_ZONE, truncated to the second (which can
   * only widen the window). "No data found" (404) is an empty, final page. Each order is read on
   * its own: one Ap21 sent wrong is a row `unreadable`, with why, and the others are read.
   */
  async listOrdersChangedSince(updatedAfter: string, page: Ap21PageRequest): Promise<Ap21OrderPage> {
    const { startRow, pageRows } = validInput(pageSchema, page, 'page');
    let since: string;
    try {
      since = toAp21DateTime(updatedAfter, this.config.timeZone);
    } catch (error) {
      throw new Ap21InvalidRequestError(`updatedAfter is invalid, not sent to Ap21: ${(error as Error).message}`);
    }
    const what = 'the changed-orders list';
    const response = await this.send('GET', 'Orders/', { updatedAfter: since, startRow, pageRows }, what);
    if (isNoDataFound(response)) return { rows: [], startRow, pageRows, hasMore: false };
    const root = this.document(response, what);
    if (root.name !== 'Orders') throw new Ap21ResponseError(`Ap21 answered ${what} with <${quoted(root.name)}>, expected <Orders>`);
    const rows = childElements(root, 'Order').map((order) => readEach(order, (element) => readOrder(element, this.readContext)));
    const totalRows = totalRowsOf(root);
    const hasMore = rows.length > 0 && (totalRows !== undefined ? startRow - 1 + rows.length < totalRows : rows.length >= pageRows);
    return { rows, startRow, pageRows, ...(totalRows !== undefined && { totalRows }), hasMore };
  }

  /**
   * `GET /Persons/{pid}/Orders/{oid}/` — one order with lines, payments (Stan, MerchantId, …) and
   * contact e-mail. The guide warns it reads the websales table: it confirms the order and its
   * payments but may lag the back office status; use the changed-orders list for status.
   */
  async getOrder(personId: string, orderId: string): Promise<Ap21Order> {
    const [pid, oid] = [this.id(personId, 'personId'), this.id(orderId, 'orderId')];
    const what = `order ${oid} of person ${pid}`;
    const root = this.document(await this.send('GET', `Persons/${pid}/Orders/${oid}/`, {}, what), what);
    if (root.name !== 'Order') throw new Ap21ResponseError(`Ap21 answered ${what} with <${quoted(root.name)}>, expected <Order>`);
    return readOrder(root, this.readContext);
  }

  /**
   * `GET /OrderNumbers/{n}` — the order with this web order number, without its person id: the
   * same `<Order>` as the single-order GET, read from the websales table; 404 when Ap21 has no such
   * order (docs/providers.md §3, Retail API guide p.140). How Refundid and pushes name an order.
   * Undefined when Ap21 says it has no such order (404 with "No data found" or an empty body); any
   * other 404 (an IIS page: a wrong AP21_API_URL) is thrown, so it cannot pass for "no such order".
   */
  async getOrderByNumber(orderNumber: string): Promise<Ap21Order | undefined> {
    const number = validInput(plainText(30), orderNumber, 'orderNumber');
    const what = `order number ${number}`;
    const response = await this.send('GET', `OrderNumbers/${encodeURIComponent(number)}`, {}, what);
    if (isNoDataFound(response)) return undefined;
    const root = this.document(response, what);
    if (root.name !== 'Order') throw new Ap21ResponseError(`Ap21 answered ${what} with <${quoted(root.name)}>, expected <Order>`);
    return readOrder(root, this.readContext);
  }

  /**
   * The returns of an order. UNCONFIRMED endpoint (AP21_RETURNS_LIST_PATH): the guide documents
   * only the single-return GET. "No data found" (404) means no returns. Each return is read on its
   * own, as the orders of a page are.
   */
  async listReturns(personId: string, orderId: string): Promise<Ap21Read<Ap21Return>[]> {
    const [pid, oid] = [this.id(personId, 'personId'), this.id(orderId, 'orderId')];
    const what = `the returns of order ${oid}`;
    const path = this.config.returnsListPath.replace('{personId}', pid).replace('{orderId}', oid);
    const response = await this.send('GET', path, {}, what);
    if (isNoDataFound(response)) return [];
    const root = this.document(response, what);
    const elements = root.name === 'ReturnOrder' ? [root] : childElements(root, 'ReturnOrder');
    if (elements.length === 0 && root.children.length > 0) {
      throw new Ap21ResponseError(`Ap21 answered ${what} with <${quoted(root.name)}> holding no <ReturnOrder>`);
    }
    return elements.map((element) => readEach(element, (one) => readReturn(one, this.returnContext())));
  }

  /** `GET /Persons/{pid}/Orders/{oid}/Returns/{rid}` (docs/providers.md §3, Retail API guide p.150). */
  async getReturn(personId: string, orderId: string, returnId: string): Promise<Ap21Return> {
    const [pid, oid, rid] = [this.id(personId, 'personId'), this.id(orderId, 'orderId'), this.id(returnId, 'returnId')];
    const what = `return ${rid} of order ${oid}`;
    const root = this.document(await this.send('GET', `Persons/${pid}/Orders/${oid}/Returns/${rid}`, {}, what), what);
    if (root.name !== 'ReturnOrder') throw new Ap21ResponseError(`Ap21 answered ${what} with <${quoted(root.name)}>, expected <ReturnOrder>`);
    return readReturn(root, this.returnContext());
  }

  /**
   * `POST /Persons/{pid}/Orders/{oid}/Returns` with a `<ReturnOrder>` (docs/providers.md §3, Retail API guide p.149; 200 expected).
   * Negative quantities and the optional negative refund payment are checked before sending.
   * Safe to retry after an ambiguous failure: the same `orderNumber` then yields `already_exists`.
   * `StockUpdate` is never sent: `False` makes Ap21 refund the original payment itself (guide
   * p.145), a second refund channel outside refund-relay's ledger.
   */
  async postReturn(personId: string, orderId: string, newReturn: NewAp21Return): Promise<Ap21PostReturnResult> {
    const [pid, oid] = [this.id(personId, 'personId'), this.id(orderId, 'orderId')];
    const input = validInput(newReturnSchema, newReturn, 'return');
    if (input.payments?.length && !seesReturnPayments(this.config.apiVersion)) {
      throw new Ap21InvalidRequestError(`return payments need AP21_API_VERSION 4.0 or later (is ${this.config.apiVersion}); Ap21 would drop them`);
    }
    const body = `<?xml version="1.0" encoding="utf-8"?>${toXml('ReturnOrder', {
      OrderNumber: input.orderNumber,
      OrigOrderNum: input.origOrderNumber,
      PersonId: pid,
      OrderDetails: {
        OrderDetail: input.lines.map((line) => ({
          SkuId: line.skuId,
          Quantity: line.quantity,
          ReturnReasonId: line.returnReasonId,
          ReturnReasonNotes: line.returnReasonNotes,
          Carrier: line.carrier,
          ConNote: line.conNote,
        })),
      },
      Payments: input.payments?.length
        ? {
            PaymentDetail: input.payments.map((payment) => ({
              MerchantId: payment.merchantId,
              CardType: payment.cardType,
              Stan: payment.stan,
              Origin: payment.origin,
              Amount: formatDecimal(payment.amount),
              Reference: payment.reference,
            })),
          }
        : undefined,
    })}`;
    const what = `return ${input.orderNumber} for order ${oid}`;
    const response = await this.send('POST', `Persons/${pid}/Orders/${oid}/Returns`, {}, what, body);
    if (response.status >= 200 && response.status < 300) {
      const returnId = /\/Returns\/(\d{1,22})(?:[/?#]|$)/i.exec(response.headers.get('location') ?? '')?.[1];
      return { kind: 'created', ...(returnId !== undefined && { returnId }) };
    }
    const error = errorForResponse(response, what, true);
    if (error instanceof Ap21RejectedError && error.code === AP21_ERROR_CODES.duplicateOrderNumber) return { kind: 'already_exists' };
    throw error;
  }

  private returnContext() {
    return { ...this.readContext, paymentsVisible: seesReturnPayments(this.config.apiVersion) };
  }

  private id(value: string, name: string): string {
    return validInput(numericId, value, name);
  }

  /** The parsed answer of a read. An `<Ap21Error>` is an error whatever the status (as the SDK treats it). */
  private document(response: OutboundResponse, what: string): XmlElement {
    if (response.status < 200 || response.status >= 300) throw errorForResponse(response, what, false);
    let root: XmlElement;
    try {
      root = parseXml(response.text, this.xmlLimits);
    } catch (error) {
      if (error instanceof XmlError) throw new Ap21ResponseError(`Ap21 answered ${what} with unreadable XML: ${error.message}`, { document: response.text });
      throw error;
    }
    if (/^Ap21Error$/i.test(root.name)) throw errorForResponse(response, what, false);
    return root;
  }

  private async send(method: 'GET' | 'POST', path: string, query: Record<string, string | number>, what: string, body?: string) {
    const url = new URL(path, this.baseUrl);
    url.searchParams.set('countryCode', this.config.countryCode);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, String(value));
    const first = await this.attempt(method, url.toString(), await this.credentials.get(), what, body);
    if (first.status !== 401) return first;
    const rotated = await this.credentials.refresh();
    return rotated ? this.attempt(method, url.toString(), rotated, what, body) : first;
  }

  private async attempt(method: 'GET' | 'POST', url: string, secret: Ap21Secret, what: string, body?: string): Promise<OutboundResponse> {
    await this.spacer.take();
    try {
      return await callProvider('ap21', {
        method,
        url,
        headers: { 'Content-Type': 'text/xml', Accept: `version_${this.config.apiVersion}`, ...authHeaders(secret) },
        ...(body !== undefined && { body }),
        timeoutMs: this.config.timeoutMs,
      });
    } catch (error) {
      if (!(error instanceof ProviderCallError)) throw error;
      // An answer too large to read is no outage: the same read gets the same answer. A POST may have acted, so it stays retryable.
      if (error.kind === 'too_large' && method === 'GET') throw new Ap21ResponseError(`Ap21 answered ${what} with more than we read: ${error.message}`);
      throw new Ap21UnavailableError(`Ap21 ${what}: ${error.message}`, { ambiguous: method === 'POST' && error.ambiguous }, { cause: error });
    }
  }
}

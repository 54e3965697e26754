import { childElement, childElements, parseXml, toXml, XmlError, type XmlElement } from '../../lambdas/commons/xml';
import { InvalidMoneyError } from '../../lambdas/domain/errors';
import { parseDecimal } from '../../lambdas/domain/money';
import type { SimRequest, SimResponse, Simulator } from '../kit';
import { fromAp21DateTime } from '../../lambdas/providers/ap21/schemas';
import {
  linesTotal,
  orderDocument,
  personDocument,
  returnDocument,
  withAttributes,
  type Ap21Corruption,
  type DocumentContext,
  type SimLineSeed,
  type SimOrder,
  type SimPaymentSeed,
  type SimPerson,
  type SimReturn,
} from './documents';
import { AP21_ERROR_CODES } from '../../lambdas/providers/ap21/statuses';

export type { Ap21Corruption, SimLineSeed, SimOrder, SimPaymentSeed, SimPerson, SimReturn } from './documents';
export { DOCUMENTED_TENDERS } from './documents';

/**
 * A stand-in for the Ap21 Retail API (local runs and tests only), serving the endpoints the
 * client uses with the guide's full documents (documents.ts), `GET /OrderNumbers/{n}`
 * (the order by its web order number) included. Documented behaviour
 * (guide 2025.1) it reproduces: mandatory `countryCode`, `updatedAfter` wall-clock times,
 * `startRow`/`pageRows` with `TotalRows`, 5421 without `updatedAfter`, 5034 for bad paging,
 * return validation codes 5052/5133/5135/5136/5138/5139/5140/5141/5142/5143/5084/5085/5211,
 * 5121/5122 for unreadable or non-XML payloads, and payload versions from the `Accept` header
 * (none → version 1): `Currency`, `OrigOrderNum` and `ReturnAuthorisationNumber` from 2.0, a
 * return's payments from 4.0 (an empty `<Payments />` below, as in the guide's 2.0 example), and
 * POSTed return payments ignored below 4.0.
 * Its own choices where Ap21 is UNCONFIRMED:
 * - a missing or unknown `countryCode` → 403 with 5029 ("Country not setup at head office");
 * - errors are `<Ap21Error><ErrorCode/><Description/></Ap21Error>` (the PHP SDK's parser);
 * - an empty list or an unknown id → 404 with 5008 ("No data found"); an unknown path → bare 404;
 * - an order's returns are listed at `GET /Persons/{pid}/Orders/{oid}/Returns` as `<ReturnOrders>`;
 * - a posted return answers 200 with a `Location` header naming the new return;
 * - a return marks its original order as updated (option `touchOrderOnReturn`);
 * - a return is listed in the changed-orders feed itself, as an `<Order>` with the return's Id,
 *   negative quantities and `OrigOrderNum` (its payments from 4.0), orders and returns sharing one
 *   id space (option `returnsInFeed`, `listReturnsInFeed`; the account of Ap21);
 * - a line's `Status` stays `Processing` unless a test sets another (`setLineStatus`);
 * - a return posted with `StockUpdate=False` and no payments gets a negative payment copied from
 *   the order's first payment (Ap21 "refunds the customer using the original payment information").
 * - every return carries a `ReturnAuthorisationNumber` (the guide's example shows one on a plain
 *   return), which names no order unless the return is an exchange (`addExchange`): then the
 *   exchange order is a real order (its own lines, value and payments, same person) whose
 *   `OrderNumber` is that number, the return's status is `Return Merged` and the original's returned
 *   lines show `Exchange` (names configurable, `exchangeStatuses`). `DELETE /Returns/{rid}` reverses
 *   it only in those statuses (guide: status 9 against 6; anything else answers 403, its code
 *   UNCONFIRMED): the exchange order is deleted, the return is a plain `Processing` return again,
 *   and both it and the original are listed as changed. Its answer (200, empty body) is UNCONFIRMED.
 * It fails the ways Ap21 does: `injectFailures` (the next answers), `refuseReturnsOf` (one order's
 * returns refused, e.g. 403 with 5087), `corruptOrder` (one order's data wrong) and `setChaos` (a
 * share of calls answered 500 with the SQL error 5015, an IIS 503 page or 429). Hangs and resets,
 * before or after the work, are the simulator host's (simulators/kit.ts).
 * `payouts()` counts returns posted with `StockUpdate=False`: the only case where Ap21 itself
 * refunds the customer (to the original payment).
 */
export interface Ap21SimulatorOptions {
  readonly countryCodes?: readonly string[];
  readonly basic?: { readonly username: string; readonly password: string };
  readonly accessToken?: string;
  readonly timeZone?: string;
  readonly currency?: string;
  readonly returnReasonIds?: readonly string[];
  readonly touchOrderOnReturn?: boolean;
  /**
   * Whether a return is listed in the changed-orders feed itself (default true, as the issue
   * describes Ap21; UNCONFIRMED by the guide): an `<Order>` with the return's Id, negative
   * quantities and `OrigOrderNum`, its payments from version 4.0. False plays an installation
   * whose feed shows no returns.
   */
  readonly returnsInFeed?: boolean;
  /**
   * The status names of an exchange (UNCONFIRMED beyond the guide's numbers, docs/providers.md §3):
   * the return's (default `Return Merged`, status 9) and the original lines' (default `Exchange`, 6).
   */
  readonly exchangeStatuses?: { readonly merged?: string; readonly original?: string };
  readonly now?: () => number;
}

/** A size swap: units of the original come back, the exchange order sends others out. */
export interface SimExchangeSeed {
  readonly lines: readonly { readonly skuId: string; readonly quantity: number; readonly returnReasonId?: string }[];
  /** What the exchange order sends out (its lines and value). */
  readonly exchangeLines: readonly SimLineSeed[];
  /** What the customer paid on the exchange order (default none: paid by the returned units). */
  readonly exchangePayments?: readonly SimPaymentSeed[];
  /**
   * Whether Ap21 shows the exchange in the statuses yet (default true). False plays the exchange
   * order existing while the return still shows `Processing`: only the order lookup tells.
   */
  readonly merged?: boolean;
}

export interface SimOrderSeed {
  readonly personId?: string;
  readonly orderNumber?: string;
  readonly email?: string;
  readonly lines: readonly SimLineSeed[];
  /** Defaults to one credit-card payment of the order total. */
  readonly payments?: readonly SimPaymentSeed[];
  readonly orderedAt?: number;
  readonly updatedAt?: number;
  /** For an order giving units back: `OrigOrderNum`, the order they came from. */
  readonly origOrderNumber?: string;
}

export interface SimReturnSeed {
  readonly orderNumber?: string;
  readonly lines: readonly { readonly skuId: string; readonly quantity: number; readonly returnReasonId?: string }[];
  readonly payments?: readonly SimPaymentSeed[];
  readonly stockUpdate?: boolean;
}

export type Ap21Endpoint =
  | 'GET /Orders'
  | 'GET /Persons/{pid}'
  | 'GET /Persons/{pid}/Orders/{oid}'
  | 'GET /OrderNumbers/{n}'
  | 'GET /Persons/{pid}/Orders/{oid}/Returns'
  | 'GET /Persons/{pid}/Orders/{oid}/Returns/{rid}'
  | 'POST /Persons/{pid}/Orders/{oid}/Returns'
  | 'DELETE /Returns/{rid}';

export interface SimCall {
  /** An `Ap21Endpoint`, or `METHOD /path` for paths Ap21 does not serve. */
  readonly endpoint: string;
  readonly path: string;
  /** `performance.now()` on arrival, to check client-side spacing. */
  readonly at: number;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export interface SimFailure {
  readonly status: number;
  readonly code?: number;
  readonly retryAfterSeconds?: number;
  /** A raw body instead of an `<Ap21Error>`, e.g. a malformed document with status 200. */
  readonly body?: string;
}

export interface SimChaos {
  /** Share of calls (0–1) answered with an Ap21 server failure instead of being served. */
  readonly rate: number;
  readonly random?: () => number;
}

interface ReturnCandidate {
  readonly orderNumber?: string;
  readonly origOrderNumber?: string;
  readonly personId?: string;
  readonly stockUpdate?: string;
  readonly lines: readonly {
    readonly skuId?: string;
    readonly quantity: number;
    readonly returnReasonId?: string;
    readonly returnReasonNotes?: string;
    readonly carrier?: string;
    readonly conNote?: string;
  }[];
  readonly payments: readonly SimPaymentSeed[];
}

type Refusal = readonly [code: number, description: string];

/** What a route handler is given: the request, its path ids and the negotiated document context. */
interface RouteCall {
  readonly request: SimRequest;
  readonly ids: readonly string[];
  readonly context: DocumentContext;
}

interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly pattern: RegExp;
  readonly endpoint: Ap21Endpoint;
  readonly serve: (call: RouteCall) => SimResponse;
}

const XML_HEADERS = { 'content-type': 'text/xml; charset=utf-8' };
const NO_DATA: SimFailure = { status: 404, code: AP21_ERROR_CODES.noDataFound };

function ap21Error(status: number, code: number | undefined, description: string): SimResponse {
  const body = toXml('Ap21Error', { ErrorCode: code, Description: description });
  return { status, headers: XML_HEADERS, body };
}

function failureResponse(failure: SimFailure, description = 'simulated failure'): SimResponse {
  const headers = failure.retryAfterSeconds !== undefined ? { ...XML_HEADERS, 'retry-after': String(failure.retryAfterSeconds) } : XML_HEADERS;
  if (failure.body !== undefined) return { status: failure.status, headers, body: failure.body };
  return { ...ap21Error(failure.status, failure.code, failure.code === AP21_ERROR_CODES.noDataFound ? 'No data found' : description), headers };
}

/** How Ap21 behind IIS fails under load: a SQL error, the IIS queue-full page, throttling. */
const CHAOS_FAILURES: readonly SimFailure[] = [
  { status: 500, code: AP21_ERROR_CODES.sqlError },
  {
    status: 503,
    body: '<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h2>Service Unavailable</h2><hr><p>HTTP Error 503. The service is unavailable.</p></body></html>',
  },
  { status: 429, retryAfterSeconds: 0 },
];

/** Query parameters are case-insensitive in Ap21 (`countryCode` and `CountryCode` both appear in the guide). */
function param(query: URLSearchParams, name: string): string | undefined {
  for (const [key, value] of query) if (key.toLowerCase() === name.toLowerCase()) return value;
  return undefined;
}

function header(request: SimRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function text(element: XmlElement, name: string): string | undefined {
  return childElement(element, name)?.text.trim() || undefined;
}

/** A return as the changed-orders feed lists it: an order of its own giving units back, naming the original by `OrigOrderNum`. */
function returnAsOrder(ret: SimReturn, context: DocumentContext): SimOrder {
  return {
    orderId: ret.returnId,
    personId: ret.personId,
    orderNumber: ret.orderNumber,
    lines: ret.lines,
    payments: context.version >= 4 ? ret.payments : [],
    orderedAt: ret.createdAt,
    updatedAt: ret.updatedAt ?? ret.createdAt,
    origOrderNumber: ret.origOrderNumber,
  };
}

const FIRST_NAMES = ['JANE', 'JOHN', 'ALEX', 'SAM', 'KIM'];
const SURNAMES = ['SMITH', 'NGUYEN', 'HILL', 'PATEL', 'BROWN'];

export class Ap21Simulator implements Simulator {
  readonly name = 'ap21';
  private readonly countryCodes: ReadonlySet<string>;
  private readonly timeZone: string;
  private readonly currency: string;
  private readonly returnReasonIds: ReadonlySet<string>;
  private readonly touchOrderOnReturn: boolean;
  private returnsInFeed: boolean;
  private readonly exchangeStatuses: { readonly merged: string; readonly original: string };
  /** Exchanges not reversed: return id → the exchange order's id and the original lines' statuses before it. */
  private readonly exchanges = new Map<string, { readonly exchangeOrderId: string; readonly before: Readonly<Record<string, string>> | undefined }>();
  private readonly now: () => number;
  private readonly orders = new Map<string, SimOrder>();
  private readonly persons = new Map<string, SimPerson>();
  private readonly returns = new Map<string, SimReturn>();
  private readonly log: SimCall[] = [];
  private readonly failures: SimFailure[] = [];
  private readonly refusedReturns = new Map<string, SimFailure>();
  private chaos: Required<SimChaos> = { rate: 0, random: Math.random };
  private readonly autoRefunds = new Map<string, number>();
  private nextId = { person: 3583, order: 20784, line: 56025, payment: 2791, return: 62347, authorisation: 6026 };

  /** The endpoints, in match order; a new one is a line here and a method below. */
  private readonly routes: readonly Route[] = [
    { method: 'GET', pattern: /^\/Orders$/i, endpoint: 'GET /Orders', serve: (call) => this.listOrders(call) },
    { method: 'GET', pattern: /^\/Persons\/(\d+)$/i, endpoint: 'GET /Persons/{pid}', serve: (call) => this.getPerson(call) },
    { method: 'GET', pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)$/i, endpoint: 'GET /Persons/{pid}/Orders/{oid}', serve: (call) => this.getOrder(call) },
    { method: 'GET', pattern: /^\/OrderNumbers\/([^/]+)$/i, endpoint: 'GET /OrderNumbers/{n}', serve: (call) => this.getOrderByNumber(call) },
    {
      method: 'GET',
      pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)\/Returns$/i,
      endpoint: 'GET /Persons/{pid}/Orders/{oid}/Returns',
      serve: (call) => this.listReturns(call),
    },
    {
      method: 'GET',
      pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)\/Returns\/(\d+)$/i,
      endpoint: 'GET /Persons/{pid}/Orders/{oid}/Returns/{rid}',
      serve: (call) => this.getReturn(call),
    },
    {
      method: 'POST',
      pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)\/Returns$/i,
      endpoint: 'POST /Persons/{pid}/Orders/{oid}/Returns',
      serve: (call) => this.postReturn(call),
    },
    { method: 'DELETE', pattern: /^\/Returns\/(\d+)$/i, endpoint: 'DELETE /Returns/{rid}', serve: (call) => this.deleteReturn(call) },
  ];

  constructor(private readonly options: Ap21SimulatorOptions) {
    if (!options.basic && !options.accessToken) throw new Error('the Ap21 simulator needs basic credentials or an access token to check');
    this.countryCodes = new Set((options.countryCodes ?? ['AU']).map((code) => code.toUpperCase()));
    this.timeZone = options.timeZone ?? 'UTC';
    this.currency = options.currency ?? 'AUD';
    this.returnReasonIds = new Set(options.returnReasonIds ?? ['10365']);
    this.touchOrderOnReturn = options.touchOrderOnReturn ?? true;
    this.returnsInFeed = options.returnsInFeed ?? true;
    this.exchangeStatuses = { merged: options.exchangeStatuses?.merged ?? 'Return Merged', original: options.exchangeStatuses?.original ?? 'Exchange' };
    this.now = options.now ?? Date.now;
  }

  /**
   * `{order: SimOrderSeed}` adds an order, `{return: {orderId, ...SimReturnSeed}}` a return; answers
   * what was made (its Ap21 ids), for the demo and tests in other processes. `{corrupt: {orderId,
   * corruption}}` and `{refuseReturns: {orderId, failure}}` break one order as `corruptOrder` and
   * `refuseReturnsOf` do (`corruption` or `failure` left out: repaired), to try isolation by hand.
   */
  seed(record: unknown): SimOrder | SimReturn | undefined {
    const seeded = (record ?? {}) as {
      order?: SimOrderSeed;
      return?: SimReturnSeed & { orderId: string };
      corrupt?: { orderId: string; corruption?: Ap21Corruption };
      refuseReturns?: { orderId: string; failure?: SimFailure };
    };
    if (seeded.order) return this.addOrder(seeded.order);
    if (seeded.return) return this.addReturn(seeded.return.orderId, seeded.return);
    if (seeded.corrupt) {
      this.corruptOrder(seeded.corrupt.orderId, seeded.corrupt.corruption);
      return undefined;
    }
    if (seeded.refuseReturns) {
      this.refuseReturnsOf(seeded.refuseReturns.orderId, seeded.refuseReturns.failure);
      return undefined;
    }
    throw new Error('seed needs {order: …}, {return: {orderId, lines}}, {corrupt: {orderId, corruption}} or {refuseReturns: {orderId, failure}}');
  }

  addOrder(seed: SimOrderSeed): SimOrder {
    const orderId = this.freshId('order');
    const orderNumber = seed.orderNumber ?? `W${orderId.padStart(7, '0')}`;
    if (this.orderNumberTaken(orderNumber)) throw new Error(`order number ${orderNumber} is taken`);
    const lines = seed.lines.map((line) => ({ ...line, lineId: String(this.nextId.line++) }));
    const payments = (
      seed.payments ?? [{ origin: 'CreditCard', cardType: 'VISA', stan: `${orderId}01`, reference: `Ref-${orderId}`, amountMinor: linesTotal(lines) }]
    ).map((payment) => ({ ...payment, paymentId: String(this.nextId.payment++) }));
    const now = this.now();
    const person = this.personFor(seed.personId, seed.email, now);
    const order: SimOrder = {
      orderId,
      personId: person.personId,
      orderNumber,
      ...(seed.email !== undefined && { email: seed.email }),
      lines,
      payments,
      orderedAt: seed.orderedAt ?? now,
      updatedAt: seed.updatedAt ?? now,
      ...(seed.origOrderNumber !== undefined && { origOrderNumber: seed.origOrderNumber }),
    };
    this.orders.set(orderId, order);
    return order;
  }

  /**
   * Refundid's "Negative Order Creation" integration (docs/providers.md §2): when it refunds units
   * of `originalOrderId`, it records the refund in Ap21 as a new order of the same person with
   * negative quantities and a negative `Refundid` payment. Which element names the original order
   * is not documented: `OrigOrderNum` (`nameOriginal: 'OrigOrderNum'`), the payment's `Reference`
   * (`'Reference'`), or neither (`'none'`).
   */
  addRefundidNegativeOrder(
    originalOrderId: string,
    seed: {
      readonly lines: readonly { readonly skuId: string; readonly quantity: number }[];
      readonly stan?: string;
      readonly nameOriginal?: 'OrigOrderNum' | 'Reference' | 'none';
    },
  ): SimOrder {
    const original = this.requireOrder(originalOrderId);
    const lines = seed.lines.map((line) => {
      const sold = original.lines.find((ordered) => ordered.skuId === line.skuId);
      if (!sold || line.quantity >= 0) throw new Error(`a negative order gives back units of the original order's SKUs (${line.skuId})`);
      return { skuId: line.skuId, quantity: line.quantity, priceMinor: sold.priceMinor };
    });
    const stan = seed.stan ?? '0938';
    const nameOriginal = seed.nameOriginal ?? 'OrigOrderNum';
    const refundid = {
      merchantId: 'Refundid',
      cardType: 'Refundid',
      origin: 'CreditCard',
      stan,
      reference: nameOriginal === 'Reference' ? original.orderNumber : `Refundid ${stan}`,
      amountMinor: linesTotal(lines),
    };
    return this.addOrder({
      personId: original.personId,
      lines,
      payments: [refundid],
      ...(nameOriginal === 'OrigOrderNum' && { origOrderNumber: original.orderNumber }),
    });
  }

  /** Seeds a return as if posted at version 4.0; refused seeds throw with the Ap21 code. */
  addReturn(orderId: string, seed: SimReturnSeed): SimReturn {
    const order = this.requireOrder(orderId);
    const candidate: ReturnCandidate = {
      ...(seed.orderNumber !== undefined && { orderNumber: seed.orderNumber }),
      origOrderNumber: order.orderNumber,
      personId: order.personId,
      ...(seed.stockUpdate !== undefined && { stockUpdate: seed.stockUpdate ? 'True' : 'False' }),
      lines: seed.lines.map((line) => ({ ...line, returnReasonId: line.returnReasonId ?? [...this.returnReasonIds][0]! })),
      payments: seed.payments ?? [],
    };
    const refusal = this.refusalOf(order, order.personId, candidate);
    if (refusal) throw new Error(`Ap21 would refuse this return: ${refusal[0]} ${refusal[1]}`);
    return this.createReturn(order, candidate);
  }

  /** A return Refundid wrote into Ap21: a version 4.0 payment with MerchantId/CardType Refundid. */
  addRefundidReturn(orderId: string, seed: Omit<SimReturnSeed, 'payments'> & { readonly stan?: string }): SimReturn {
    const order = this.requireOrder(orderId);
    const amountMinor = -seed.lines.reduce(
      (sum, line) => sum + Math.abs(line.quantity) * (order.lines.find((l) => l.skuId === line.skuId)?.priceMinor ?? 0),
      0,
    );
    const stan = seed.stan ?? '0938';
    const refundid = { merchantId: 'Refundid', cardType: 'Refundid', stan, origin: 'CreditCard', amountMinor, reference: `Refundid ${stan}` };
    return this.addReturn(orderId, { ...seed, payments: [refundid] });
  }

  /**
   * A size exchange as Ap21 records it: a return of `lines` and an exchange order of `exchangeLines`
   * whose order number is the return's `ReturnAuthorisationNumber`; the return shows the merged
   * status and the original's returned lines the exchange status. Both orders are listed as changed.
   */
  addExchange(orderId: string, seed: SimExchangeSeed): { readonly ret: SimReturn; readonly exchangeOrder: SimOrder } {
    const original = this.requireOrder(orderId);
    const ret = this.addReturn(orderId, { lines: seed.lines });
    const exchangeOrder = this.addOrder({
      personId: original.personId,
      orderNumber: ret.returnAuthorisationNumber,
      ...(original.email !== undefined && { email: original.email }),
      lines: seed.exchangeLines,
      payments: seed.exchangePayments ?? [],
    });
    this.exchanges.set(ret.returnId, { exchangeOrderId: exchangeOrder.orderId, before: original.lineStatuses });
    if (seed.merged === false) return { ret, exchangeOrder };
    const now = this.now();
    const statuses = { ...original.lineStatuses };
    for (const line of original.lines.filter((ordered) => ret.lines.some((returned) => returned.skuId === ordered.skuId))) {
      statuses[line.lineId] = this.exchangeStatuses.original;
    }
    original.lineStatuses = statuses;
    original.updatedAt = now;
    ret.status = this.exchangeStatuses.merged;
    ret.updatedAt = now;
    return { ret, exchangeOrder };
  }

  /** What `DELETE /Returns/{rid}` does (only once the exchange shows merged): an error text when Ap21 would refuse, else undefined. */
  reverseExchange(returnId: string, at = this.now()): string | undefined {
    const ret = this.returns.get(returnId);
    const exchange = this.exchanges.get(returnId);
    if (!ret) return `Return ${returnId} not found`;
    if (!exchange || ret.status !== this.exchangeStatuses.merged) return `Return ${returnId} is not merged into an exchange`;
    this.orders.delete(exchange.exchangeOrderId);
    this.exchanges.delete(returnId);
    const original = this.requireOrder(ret.orderId);
    original.lineStatuses = exchange.before;
    original.updatedAt = at;
    ret.status = 'Processing';
    ret.updatedAt = at;
    return undefined;
  }

  /** Lists returns in the changed-orders feed (true) or plays an installation whose feed shows none (false). */
  listReturnsInFeed(listed: boolean): void {
    this.returnsInFeed = listed;
  }

  touchOrder(orderId: string, at = this.now()): void {
    this.requireOrder(orderId).updatedAt = at;
  }

  /**
   * Shows `status` on the order's lines of `skuId` from now on (e.g. `Returned`): a change of the
   * order, so it is listed again. Which status Ap21 shows after a return is UNCONFIRMED; the
   * simulator never sets one by itself.
   */
  setLineStatus(orderId: string, skuId: string, status: string, at = this.now()): void {
    const order = this.requireOrder(orderId);
    const statuses = { ...order.lineStatuses };
    for (const line of order.lines.filter((ordered) => ordered.skuId === skuId)) statuses[line.lineId] = status;
    order.lineStatuses = statuses;
    order.updatedAt = at;
  }

  /**
   * Shows `status` as the return's own `<Status>` from now on (e.g. a received or merged return):
   * a change of the return and of its original order, so both are listed again. Which names Ap21
   * gives its return statuses is UNCONFIRMED beyond `Processing` (docs/providers.md §3).
   */
  setReturnStatus(returnId: string, status: string, at = this.now()): void {
    const ret = this.returns.get(returnId);
    if (!ret) throw new Error(`no return ${returnId}`);
    ret.status = status;
    ret.updatedAt = at;
    this.requireOrder(ret.orderId).updatedAt = at;
  }

  /**
   * Serves the order with `corruption` from now on (undefined: correct again). Either is a change
   * of the order in Ap21, so it moves to the end of the changed-orders list.
   */
  corruptOrder(orderId: string, corruption: Ap21Corruption | undefined, at = this.now()): void {
    const order = this.requireOrder(orderId);
    order.corruption = corruption;
    order.updatedAt = at;
  }

  /** Answers every read of this order's returns with `failure` (e.g. 403 with an API code); undefined lifts it. */
  refuseReturnsOf(orderId: string, failure: SimFailure | undefined): void {
    this.requireOrder(orderId);
    if (failure) this.refusedReturns.set(orderId, failure);
    else this.refusedReturns.delete(orderId);
  }

  /** Fails `rate` of all calls with one of Ap21's server failures, chosen at random. */
  setChaos(chaos: SimChaos): void {
    this.chaos = { rate: chaos.rate, random: chaos.random ?? Math.random };
  }

  order(orderId: string): SimOrder | undefined {
    return this.orders.get(orderId);
  }

  person(personId: string): SimPerson | undefined {
    return this.persons.get(personId);
  }

  returnsOf(orderId: string): SimReturn[] {
    return [...this.returns.values()].filter((ret) => ret.orderId === orderId);
  }

  /**
   * The `<ReturnOrder>` exactly as `GET …/Returns/{rid}` answers it at payload `version` (default
   * 4.0, payments included): what an Ap21-side integration sends when it pushes the return.
   */
  returnDocument(returnId: string, version = 4): string {
    const found = this.returns.get(returnId);
    if (!found) throw new Error(`no simulated return ${returnId}`);
    return returnDocument(found, { currency: this.currency, timeZone: this.timeZone, version });
  }

  /** Answers the next `count` calls with `failure` (before auth and routing, like an outage). */
  injectFailures(count: number, failure: SimFailure): void {
    for (let i = 0; i < count; i++) this.failures.push(failure);
  }

  calls(endpoint?: string): SimCall[] {
    return this.log.filter((call) => endpoint === undefined || call.endpoint === endpoint);
  }

  callCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const call of this.log) counts[call.endpoint] = (counts[call.endpoint] ?? 0) + 1;
    return counts;
  }

  payouts(): ReadonlyMap<string, number> {
    return this.autoRefunds;
  }

  async handle(request: SimRequest): Promise<SimResponse> {
    const at = performance.now();
    const path = request.path.replace(/\/+$/, '') || '/';
    const routed = this.routes
      .filter((route) => route.method === request.method)
      .map((route) => ({ route, match: route.pattern.exec(path) }))
      .find((candidate) => candidate.match);
    const response = this.answer(request, routed?.route, routed?.match?.slice(1) ?? []);
    this.log.push({
      endpoint: routed?.route.endpoint ?? `${request.method} ${path}`,
      path,
      at,
      query: Object.fromEntries(request.query),
      status: response.status,
    });
    return response;
  }

  private answer(request: SimRequest, route: Route | undefined, ids: readonly (string | undefined)[]): SimResponse {
    const failure = this.failures.shift();
    if (failure) return failureResponse(failure);
    if (this.chaos.rate > 0 && this.chaos.random() < this.chaos.rate) {
      return failureResponse(CHAOS_FAILURES[Math.floor(this.chaos.random() * CHAOS_FAILURES.length)]!, 'SQL error');
    }
    if (!this.authorised(request)) {
      return { status: 401, headers: { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="RetailAPI"' }, body: 'Unauthorized' };
    }
    if (!route) return { status: 404, headers: { 'content-type': 'text/html' }, body: '<html><body>The resource cannot be found.</body></html>' };
    const country = param(request.query, 'countryCode');
    if (!country || !this.countryCodes.has(country.toUpperCase())) {
      return ap21Error(403, AP21_ERROR_CODES.countryNotSetUp, `Country ${country ?? ''} not setup at head office`);
    }
    const version = Number(/version_(\d{1,2}(?:\.\d{1,2})?)/i.exec(header(request, 'accept') ?? '')?.[1] ?? '1');
    const context: DocumentContext = { currency: this.currency, timeZone: this.timeZone, version };
    return route.serve({ request, ids: ids.map((id) => id ?? ''), context });
  }

  private authorised(request: SimRequest): boolean {
    const { basic, accessToken } = this.options;
    const token = header(request, 'x-ap21-access-token');
    if (accessToken !== undefined && token === accessToken) return true;
    const authorization = header(request, 'authorization') ?? '';
    if (!basic || !/^Basic /i.test(authorization)) return false;
    return Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8') === `${basic.username}:${basic.password}`;
  }

  /** The order named by a path's person and order ids, or undefined (Ap21 answers 5008). */
  private pathOrder(ids: readonly string[]): SimOrder | undefined {
    const [personId, orderId = ''] = ids;
    const order = this.orders.get(orderId);
    return order && order.personId === personId ? order : undefined;
  }

  private listOrders({ request, context }: RouteCall): SimResponse {
    const { query } = request;
    const updatedAfter = param(query, 'updatedAfter');
    if (!updatedAfter) return ap21Error(403, AP21_ERROR_CODES.updatedAfterRequired, 'Request requires either personId, id, or updatedAfter to be set.');
    let since: number;
    try {
      since = Date.parse(fromAp21DateTime(updatedAfter, this.timeZone));
    } catch {
      return ap21Error(400, undefined, `Invalid updatedAfter ${updatedAfter}`);
    }
    const paging = ['startRow', 'pageRows'].map((name) => param(query, name));
    if (paging.some((value) => value !== undefined && !/^[1-9]\d{0,8}$/.test(value))) {
      return ap21Error(400, AP21_ERROR_CODES.invalidPagination, 'Invalid pagination parameters');
    }
    const startRow = Number(paging[0] ?? 1);
    const listed = this.returnsInFeed
      ? [...this.orders.values(), ...[...this.returns.values()].map((ret) => returnAsOrder(ret, context))]
      : [...this.orders.values()];
    const changed = listed.filter((order) => order.updatedAt > since).sort((a, b) => a.updatedAt - b.updatedAt || Number(a.orderId) - Number(b.orderId));
    const rows = changed.slice(startRow - 1, startRow - 1 + Number(paging[1] ?? changed.length));
    if (rows.length === 0) return failureResponse(NO_DATA);
    const body = withAttributes(
      'Orders',
      { TotalRows: changed.length },
      rows.map((order, i) => orderDocument(order, startRow + i, this.persons.get(order.personId), context)).join(''),
    );
    return { status: 200, headers: XML_HEADERS, body };
  }

  private getPerson({ ids, context }: RouteCall): SimResponse {
    const person = this.persons.get(ids[0] ?? '');
    if (!person) return failureResponse(NO_DATA);
    return { status: 200, headers: XML_HEADERS, body: personDocument(person, context) };
  }

  private getOrder({ ids, context }: RouteCall): SimResponse {
    const order = this.pathOrder(ids);
    if (!order) return failureResponse(NO_DATA);
    return { status: 200, headers: XML_HEADERS, body: orderDocument(order, 1, this.persons.get(order.personId), context) };
  }

  /** `GET /OrderNumbers/{n}`: the same `<Order>` as the single-order GET, found by its web order number (guide p.140). */
  private getOrderByNumber({ ids, context }: RouteCall): SimResponse {
    let wanted: string;
    try {
      wanted = decodeURIComponent(ids[0] ?? '').toLowerCase();
    } catch {
      return failureResponse(NO_DATA);
    }
    const order = [...this.orders.values()].find((candidate) => candidate.orderNumber.toLowerCase() === wanted);
    if (!order) return failureResponse(NO_DATA);
    return { status: 200, headers: XML_HEADERS, body: orderDocument(order, 1, this.persons.get(order.personId), context) };
  }

  private listReturns({ ids, context }: RouteCall): SimResponse {
    const order = this.pathOrder(ids);
    if (!order) return failureResponse(NO_DATA);
    const refused = this.refusedReturns.get(order.orderId);
    if (refused) return failureResponse(refused, 'Returns are only allowed on a Despatch from Warehouse order');
    const returns = this.returnsOf(order.orderId);
    if (returns.length === 0) return failureResponse(NO_DATA);
    return {
      status: 200,
      headers: XML_HEADERS,
      body: withAttributes('ReturnOrders', { TotalRows: returns.length }, returns.map((ret) => returnDocument(ret, context)).join('')),
    };
  }

  private getReturn({ ids, context }: RouteCall): SimResponse {
    const order = this.pathOrder(ids);
    const found = this.returns.get(ids[2] ?? '');
    if (!order || !found || found.orderId !== order.orderId) return failureResponse(NO_DATA);
    const refused = this.refusedReturns.get(order.orderId);
    if (refused) return failureResponse(refused, 'Returns are only allowed on a Despatch from Warehouse order');
    return { status: 200, headers: XML_HEADERS, body: returnDocument(found, context) };
  }

  /** `DELETE /Returns/{rid}?CountryCode=`: reverses an exchange (guide: only a Return Merged return against an original in Exchange). */
  private deleteReturn({ ids }: RouteCall): SimResponse {
    const refusal = this.reverseExchange(ids[0] ?? '');
    if (refusal !== undefined) return ap21Error(403, undefined, refusal);
    return { status: 200, headers: XML_HEADERS, body: '' };
  }

  private postReturn({ request, ids, context }: RouteCall): SimResponse {
    const order = this.pathOrder(ids);
    if (!order) return failureResponse(NO_DATA);
    if (!/xml/i.test(header(request, 'content-type') ?? '')) return ap21Error(403, AP21_ERROR_CODES.contentTypeNotXml, 'Request content type is not XML');
    let candidate: ReturnCandidate;
    try {
      candidate = this.readCandidate(parseXml(request.body.toString('utf8')), context.version);
    } catch (error) {
      if (error instanceof XmlError || error instanceof InvalidMoneyError)
        return ap21Error(403, AP21_ERROR_CODES.cannotDeserialise, 'Cannot deserialise payload');
      throw error;
    }
    const refusal = this.refusalOf(order, ids[0] ?? '', candidate);
    if (refusal) return ap21Error(403, ...refusal);
    const created = this.createReturn(order, candidate);
    const location = `/Persons/${order.personId}/Orders/${order.orderId}/Returns/${created.returnId}?countryCode=${param(request.query, 'countryCode')}`;
    return { status: 200, headers: { ...XML_HEADERS, location }, body: '' };
  }

  private readCandidate(root: XmlElement, version: number): ReturnCandidate {
    if (root.name !== 'ReturnOrder') throw new XmlError(`expected <ReturnOrder>, got <${root.name}>`);
    const details = childElement(root, 'OrderDetails');
    const payments = version >= 4 ? childElements(childElement(root, 'Payments') ?? root, 'PaymentDetail') : [];
    const optional = <T extends string>(key: T, value: string | undefined) => (value === undefined ? {} : ({ [key]: value } as Record<T, string>));
    return {
      ...optional('orderNumber', text(root, 'OrderNumber')),
      ...optional('origOrderNumber', text(root, 'OrigOrderNum')),
      ...optional('personId', text(root, 'PersonId')),
      ...optional('stockUpdate', text(root, 'StockUpdate')),
      lines: (details ? childElements(details, 'OrderDetail') : []).map((line) => ({
        ...optional('skuId', text(line, 'SkuId')),
        quantity: Number(text(line, 'Quantity') ?? Number.NaN),
        ...optional('returnReasonId', text(line, 'ReturnReasonId')),
        ...optional('returnReasonNotes', text(line, 'ReturnReasonNotes')),
        ...optional('carrier', text(line, 'Carrier')),
        ...optional('conNote', text(line, 'ConNote')),
      })),
      payments: payments.map((payment) => ({
        ...optional('origin', text(payment, 'Origin')),
        ...optional('cardType', text(payment, 'CardType')),
        ...optional('stan', text(payment, 'Stan')),
        ...optional('reference', text(payment, 'Reference')),
        ...optional('merchantId', text(payment, 'MerchantId')),
        amountMinor: parseDecimal(text(payment, 'Amount') ?? '', this.currency).minor,
      })),
    };
  }

  private refusalOf(order: SimOrder, personId: string, candidate: ReturnCandidate): Refusal | undefined {
    const codes = AP21_ERROR_CODES;
    if (!candidate.personId) return [codes.personIdMissing, 'Person ID is missing from the return order'];
    if (candidate.personId !== personId) return [codes.personIdMismatch, 'Person ID from URL is different to payload'];
    if (!candidate.origOrderNumber) return [codes.origOrderNumberMissing, 'Original Order Number is missing from the payload'];
    if (candidate.origOrderNumber !== order.orderNumber)
      return [codes.origOrderNumberInvalid, `Original order number ${candidate.origOrderNumber} is not valid`];
    if (candidate.orderNumber && this.orderNumberTaken(candidate.orderNumber)) return [codes.duplicateOrderNumber, 'The order number already exists'];
    const { lines } = candidate;
    if (lines.length === 0 || lines.some((line) => !Number.isFinite(line.quantity) || line.quantity === 0)) {
      return [codes.quantityMissingOrZero, 'Some of the quantities are missing or equals to zero'];
    }
    if (lines.some((line) => line.quantity > 0)) return [codes.quantityNotNegative, 'Some of the quantities are greater than zero'];
    for (const line of lines) {
      if (!order.lines.some((ordered) => ordered.skuId === line.skuId))
        return [codes.skuNotOnOriginalOrder, `SKUID ${line.skuId ?? ''} not found on original order`];
      if (!line.returnReasonId) return [codes.returnReasonMissing, 'Return reason id is missing'];
      if (!this.returnReasonIds.has(line.returnReasonId)) return [codes.returnReasonInvalid, `Return reason id ${line.returnReasonId} is invalid`];
      if ((line.carrier?.length ?? 0) > 12) return [codes.carrierTooLong, 'Carrier name is too long'];
      if ((line.conNote?.length ?? 0) > 50) return [codes.conNoteTooLong, 'ConNote is too long'];
    }
    if (candidate.stockUpdate !== undefined && !/^(true|false)$/i.test(candidate.stockUpdate)) {
      return [codes.invalidStockUpdate, `Stock update '${candidate.stockUpdate}' is not valid. Must be 'True' or 'False'`];
    }
    return undefined;
  }

  private createReturn(order: SimOrder, candidate: ReturnCandidate): SimReturn {
    const returnId = this.freshId('return');
    const orderNumber = candidate.orderNumber ?? `${order.orderNumber}-R${this.returnsOf(order.orderId).length + 1}`;
    const stockUpdate = !/^false$/i.test(candidate.stockUpdate ?? 'True');
    const created: SimReturn = {
      returnId,
      orderId: order.orderId,
      personId: order.personId,
      orderNumber,
      origOrderNumber: order.orderNumber,
      returnAuthorisationNumber: String(this.nextId.authorisation++),
      lines: candidate.lines.map((line) => {
        const { lineId: _ordered, discountMinor: _discount, ...ordered } = order.lines.find((l) => l.skuId === line.skuId)!;
        return {
          ...ordered,
          lineId: String(this.nextId.line++),
          quantity: line.quantity,
          returnReasonId: line.returnReasonId!,
          ...(line.returnReasonNotes !== undefined && { returnReasonNotes: line.returnReasonNotes }),
          ...(line.carrier !== undefined && { carrier: line.carrier }),
          ...(line.conNote !== undefined && { conNote: line.conNote }),
        };
      }),
      payments: (stockUpdate || candidate.payments.length ? candidate.payments : this.autoRefundPayments(order, candidate)).map((payment) => ({
        ...payment,
        paymentId: String(this.nextId.payment++),
      })),
      stockUpdate,
      createdAt: this.now(),
    };
    this.returns.set(returnId, created);
    if (!stockUpdate) this.autoRefunds.set(orderNumber, (this.autoRefunds.get(orderNumber) ?? 0) + 1);
    if (this.touchOrderOnReturn) order.updatedAt = created.createdAt;
    return created;
  }

  /** `StockUpdate=False`: Ap21 refunds the returned value to the order's first payment itself. */
  private autoRefundPayments(order: SimOrder, candidate: ReturnCandidate): SimPaymentSeed[] {
    const [original] = order.payments;
    if (!original) return [];
    const value = candidate.lines.reduce((sum, line) => sum + line.quantity * order.lines.find((l) => l.skuId === line.skuId)!.priceMinor, 0);
    return [
      {
        ...(original.origin !== undefined && { origin: original.origin }),
        ...(original.cardType !== undefined && { cardType: original.cardType }),
        ...(original.stan !== undefined && { stan: original.stan }),
        ...(original.reference !== undefined && { reference: original.reference }),
        ...(original.merchantId !== undefined && { merchantId: original.merchantId }),
        amountMinor: value,
      },
    ];
  }

  /** The person an order is placed for: the one named (created on first use) or a new one. */
  private personFor(personId: string | undefined, email: string | undefined, now: number): SimPerson {
    const id = personId ?? String(this.nextId.person++);
    let person = this.persons.get(id);
    if (!person) {
      const n = Number(id);
      person = {
        personId: id,
        firstname: FIRST_NAMES[n % FIRST_NAMES.length]!,
        surname: SURNAMES[n % SURNAMES.length]!,
        updatedAt: now,
        ...(email && { email }),
      };
      this.persons.set(id, person);
    }
    return person;
  }

  /** Orders and returns share Ap21's id space (a return is listed among the orders): no id is used twice. */
  private freshId(kind: 'order' | 'return'): string {
    for (;;) {
      const id = String(this.nextId[kind]++);
      if (!this.orders.has(id) && !this.returns.has(id)) return id;
    }
  }

  private orderNumberTaken(orderNumber: string): boolean {
    const taken = (number: string) => number.toLowerCase() === orderNumber.toLowerCase();
    return [...this.orders.values()].some((order) => taken(order.orderNumber)) || [...this.returns.values()].some((ret) => taken(ret.orderNumber));
  }

  private requireOrder(orderId: string): SimOrder {
    const order = this.orders.get(orderId);
    if (!order) throw new Error(`no simulated order ${orderId}`);
    return order;
  }
}

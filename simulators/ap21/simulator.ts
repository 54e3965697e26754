import type { SimRequest, SimResponse, Simulator } from '../kit';
import { AP21_ERROR_CODES } from '../../lambdas/providers/ap21/statuses';
import { returnDocument, type DocumentContext } from './documents';
import { linesTotal, type Ap21Corruption, type SimFailure, type SimOrder, type SimOrderSeed, type SimReturn, type SimReturnSeed } from './model';
import { ROUTES, type Route } from './routes';
import { ap21Error, failureResponse, header, param } from './wire';
import { Ap21World, type Ap21WorldOptions } from './world';

export type {
  Ap21Corruption,
  SimExchangeSeed,
  SimFailure,
  SimLineSeed,
  SimOrder,
  SimOrderSeed,
  SimPaymentSeed,
  SimPerson,
  SimReturn,
  SimReturnSeed,
} from './model';
export { DOCUMENTED_TENDERS } from './model';
export type { Ap21Endpoint } from './routes';

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
export interface Ap21SimulatorOptions extends Ap21WorldOptions {
  readonly countryCodes?: readonly string[];
  readonly basic?: { readonly username: string; readonly password: string };
  readonly accessToken?: string;
}

export interface SimCall {
  /** An `Ap21Endpoint`, or `METHOD /path` for paths Ap21 does not serve. */
  readonly endpoint: string;
  readonly path: string;
  /** `performance.now()` on arrival, to check client-side spacing. */
  readonly at: number;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

export interface SimChaos {
  /** Share of calls (0–1) answered with an Ap21 server failure instead of being served. */
  readonly rate: number;
  readonly random?: () => number;
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

export class Ap21Simulator extends Ap21World implements Simulator {
  readonly name = 'ap21';
  private readonly countryCodes: ReadonlySet<string>;
  private readonly log: SimCall[] = [];
  private readonly failures: SimFailure[] = [];
  private chaos: Required<SimChaos> = { rate: 0, random: Math.random };

  constructor(private readonly options: Ap21SimulatorOptions) {
    super(options);
    if (!options.basic && !options.accessToken) throw new Error('the Ap21 simulator needs basic credentials or an access token to check');
    this.countryCodes = new Set((options.countryCodes ?? ['AU']).map((code) => code.toUpperCase()));
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

  /** Fails `rate` of all calls with one of Ap21's server failures, chosen at random. */
  setChaos(chaos: SimChaos): void {
    this.chaos = { rate: chaos.rate, random: chaos.random ?? Math.random };
  }

  /**
   * The `<ReturnOrder>` exactly as `GET …/Returns/{rid}` answers it at payload `version` (default
   * 4.0, payments included): what an Ap21-side integration sends when it pushes the return.
   */
  returnDocument(returnId: string, version = 4): string {
    const found = this.returnById(returnId);
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

  async handle(request: SimRequest): Promise<SimResponse> {
    const at = performance.now();
    const path = request.path.replace(/\/+$/, '') || '/';
    const routed = ROUTES.filter((route) => route.method === request.method)
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
    return route.serve(this, { request, ids: ids.map((id) => id ?? ''), context });
  }

  private authorised(request: SimRequest): boolean {
    const { basic, accessToken } = this.options;
    const token = header(request, 'x-ap21-access-token');
    if (accessToken !== undefined && token === accessToken) return true;
    const authorization = header(request, 'authorization') ?? '';
    if (!basic || !/^Basic /i.test(authorization)) return false;
    return Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8') === `${basic.username}:${basic.password}`;
  }
}

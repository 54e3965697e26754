import { refusalOf, type Refusal, type ReturnCandidate } from './return-rules';
import {
  linesTotal,
  type Ap21Corruption,
  type SimExchangeSeed,
  type SimFailure,
  type SimOrder,
  type SimOrderSeed,
  type SimPaymentSeed,
  type SimPerson,
  type SimReturn,
  type SimReturnSeed,
} from './model';

/** What shapes the simulated installation's data (the rest of Ap21SimulatorOptions is its HTTP face). */
export interface Ap21WorldOptions {
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

const FIRST_NAMES = ['JANE', 'JOHN', 'ALEX', 'SAM', 'KIM'];
const SURNAMES = ['SMITH', 'NGUYEN', 'HILL', 'PATEL', 'BROWN'];

/**
 * The Ap21 installation's data in memory: persons, orders and returns, exchanges, the returns Ap21
 * refunds itself, and what a test broke on purpose. Tests and the demo change it through the
 * methods below; the routes (routes.ts, feed.ts) read it and post returns into it.
 */
export class Ap21World {
  readonly timeZone: string;
  readonly currency: string;
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
  private readonly refusedReturns = new Map<string, SimFailure>();
  private readonly autoRefunds = new Map<string, number>();
  private nextId = { person: 3583, order: 20784, line: 56025, payment: 2791, return: 62347, authorisation: 6026 };

  constructor(options: Ap21WorldOptions) {
    this.timeZone = options.timeZone ?? 'UTC';
    this.currency = options.currency ?? 'AUD';
    this.returnReasonIds = new Set(options.returnReasonIds ?? ['10365']);
    this.touchOrderOnReturn = options.touchOrderOnReturn ?? true;
    this.returnsInFeed = options.returnsInFeed ?? true;
    this.exchangeStatuses = { merged: options.exchangeStatuses?.merged ?? 'Return Merged', original: options.exchangeStatuses?.original ?? 'Exchange' };
    this.now = options.now ?? Date.now;
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

  order(orderId: string): SimOrder | undefined {
    return this.orders.get(orderId);
  }

  person(personId: string): SimPerson | undefined {
    return this.persons.get(personId);
  }

  returnsOf(orderId: string): SimReturn[] {
    return [...this.returns.values()].filter((ret) => ret.orderId === orderId);
  }

  payouts(): ReadonlyMap<string, number> {
    return this.autoRefunds;
  }

  /** The order a path names by person and order id, or undefined (Ap21 answers 5008). */
  orderOf(personId: string, orderId: string): SimOrder | undefined {
    const order = this.orders.get(orderId);
    return order && order.personId === personId ? order : undefined;
  }

  /** The order whose web order number is `orderNumber`, ignoring case (`GET /OrderNumbers/{n}`). */
  orderNumbered(orderNumber: string): SimOrder | undefined {
    const wanted = orderNumber.toLowerCase();
    return [...this.orders.values()].find((candidate) => candidate.orderNumber.toLowerCase() === wanted);
  }

  returnById(returnId: string): SimReturn | undefined {
    return this.returns.get(returnId);
  }

  /** How reads of this order's returns fail (`refuseReturnsOf`), if they do. */
  returnsRefusal(orderId: string): SimFailure | undefined {
    return this.refusedReturns.get(orderId);
  }

  allOrders(): readonly SimOrder[] {
    return [...this.orders.values()];
  }

  allReturns(): readonly SimReturn[] {
    return [...this.returns.values()];
  }

  get listsReturnsInFeed(): boolean {
    return this.returnsInFeed;
  }

  /** Why Ap21 refuses `candidate` as a return of `order` posted under `personId`, or undefined. */
  refusalOf(order: SimOrder, personId: string, candidate: ReturnCandidate): Refusal | undefined {
    return refusalOf(order, personId, candidate, { returnReasonIds: this.returnReasonIds, orderNumberTaken: (number) => this.orderNumberTaken(number) });
  }

  createReturn(order: SimOrder, candidate: ReturnCandidate): SimReturn {
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

  protected requireOrder(orderId: string): SimOrder {
    const order = this.orders.get(orderId);
    if (!order) throw new Error(`no simulated order ${orderId}`);
    return order;
  }
}

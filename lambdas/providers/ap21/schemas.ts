import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { bounded, MAX_MESSAGE_CHARS } from '../../commons/bounded';
import { describeIssues } from '../../commons/validation';
import { canonicalXml, childElement, childElements, type XmlElement } from '../../commons/xml';
import { InvalidMoneyError } from '../../domain/errors';
import { parseDecimal, type Money } from '../../domain/money';
import { Ap21ResponseError } from './statuses';

/**
 * Secret `ap21` (JSON). Exactly one way to authenticate: `username`/`password` (HTTP Basic) or
 * `accessToken` (header `X-Ap21-Access-Token`), whichever the retailer issued. `pushApiKey` is
 * ours: the key an Ap21-side integration presents to `POST /ap21/returns`.
 */
export const ap21SecretSchema = z
  .object({
    username: z.optional(z.string().check(z.minLength(1), z.maxLength(256), z.regex(/^[^:]*$/, 'must not contain ":"'))),
    password: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
    accessToken: z.optional(z.string().check(z.minLength(1), z.maxLength(4096))),
    pushApiKey: z.optional(z.string().check(z.minLength(16), z.maxLength(256))),
  })
  .check(
    z.refine((secret) => (secret.username === undefined) === (secret.password === undefined), 'username and password go together'),
    z.refine((secret) => (secret.username !== undefined) !== (secret.accessToken !== undefined), 'give either username/password or accessToken, not both'),
  );

export type Ap21Secret = z.infer<typeof ap21SecretSchema>;

export interface Ap21Payment {
  readonly paymentId?: string;
  /** CreditCard, DirectDebit, Zip, GiftVoucher, … (guide PaymentDetail). */
  readonly origin?: string;
  readonly cardType?: string;
  /** Gateway transaction id; what a card refund needs (docs/providers.md §3, Retail API guide p.121). */
  readonly stan?: string;
  readonly reference?: string;
  readonly merchantId?: string;
  readonly accountId?: string;
  /** Negative for money going back to the customer (docs/providers.md §3, Retail API guide p.123: "negative amounts mean a credit"). */
  readonly amount: Money;
}

export interface Ap21OrderLine {
  /** `OrderDetail/Id`: the stable line id within the order. */
  readonly lineId: string;
  readonly skuId: string;
  /** Whole units; negative on a negative (return) order. */
  readonly quantity: number;
  readonly price?: Money;
  /** Net value of the line (after discount), what the customer paid for it. */
  readonly value: Money;
  readonly discount?: Money;
  readonly productCode?: string;
  readonly productName?: string;
  readonly colourName?: string;
  readonly sizeCode?: string;
  /** Processing / Shipped / Cancelled / Returned. */
  readonly status?: string;
  /** `NonReturnable` true: the retailer does not take this product back (docs/design.md §2.7). */
  readonly nonReturnable?: boolean;
}

export interface Ap21Order {
  readonly orderId: string;
  readonly orderNumber: string;
  readonly personId: string;
  readonly partnerOrderId?: string;
  /**
   * `OrigOrderNum`, on an order that gives units back (Refundid's negative orders, docs/providers.md
   * §2): the order they came from. Read when present; the guide documents it on returns only.
   */
  readonly origOrderNumber?: string;
  /** `OrderDateTime` converted from Ap21's wall clock (AP21_TIME_ZONE) to UTC ISO. */
  readonly orderedAt?: string;
  readonly currency: string;
  readonly email?: string;
  readonly totalDue?: Money;
  readonly lines: readonly Ap21OrderLine[];
  readonly payments: readonly Ap21Payment[];
  /** Payments of an order are version 1 elements, always present when they exist. */
  readonly paymentsVisible: true;
  /**
   * Elements of the order or its lines about returns or refunds that hold a value (e.g. a returned
   * quantity, `ReturnAuthorisationNumber`), as `Element` or `OrderDetail/Element`: signs that the
   * order has returns (lambdas/services/ap21-returns-read.ts). Absent when there are none.
   */
  readonly returnMarks?: readonly string[];
}

export interface Ap21OrderPage {
  /** The page's orders in list order, each read on its own (`readEach`). */
  readonly rows: readonly Ap21Read<Ap21Order>[];
  readonly startRow: number;
  readonly pageRows: number;
  /** From the collection's `TotalRows` attribute; undefined when Ap21 leaves it out. */
  readonly totalRows?: number;
  readonly hasMore: boolean;
}

export interface Ap21ReturnLine {
  readonly lineId?: string;
  readonly skuId: string;
  /** Always negative: units coming back (docs/providers.md §3, Retail API guide p.146). */
  readonly quantity: number;
  readonly returnReasonId?: string;
  readonly price?: Money;
  readonly value?: Money;
  readonly status?: string;
}

export interface Ap21Return {
  readonly returnId: string;
  readonly orderNumber: string;
  readonly origOrderNumber?: string;
  readonly personId: string;
  /** The exchange order number Ap21 generates; GET only. */
  readonly returnAuthorisationNumber?: string;
  /** The return's own `<Status>` as Ap21 names it (e.g. `Processing`); GET only. */
  readonly status?: string;
  readonly currency: string;
  readonly totalDue?: Money;
  readonly lines: readonly Ap21ReturnLine[];
  readonly payments: readonly Ap21Payment[];
  /** False when read below version 4.0: Ap21 then omits return payments (see `refundStateOf`). */
  readonly paymentsVisible: boolean;
}

export interface ReadContext {
  /** Fallback when `Currency/Code` is absent or empty (one currency per web store). */
  readonly currency: string;
  readonly timeZone: string;
}

const ID = /^\d{1,22}$/;
const DECIMAL = /^-?\d{1,20}(?:\.\d{1,6})?$/;
const WHOLE_UNITS = /^-?\d{1,9}(?:\.0{1,6})?$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,7})?$/;

const id = z.string().check(z.regex(ID, 'expected a numeric id'));
const decimal = z.string().check(z.regex(DECIMAL, 'expected a decimal amount'));
const units = z.string().check(z.regex(WHOLE_UNITS, 'expected a whole quantity'));
const text = (max: number) => z.string().check(z.maxLength(max));

/*
 * Be liberal in what is accepted, precise where money depends on it. The fields below decide who
 * is refunded, how much and through which payment: a wrong one sets the whole document aside for
 * an operator. Everything else Ap21 sends (descriptions, list prices, totals, dates, elements no
 * guide documents) is read when it reads and cut or left out when it does not.
 */
const lineFields = {
  Id: z.optional(id),
  SkuId: id,
  Quantity: units,
  Value: z.optional(decimal),
};

/** Descriptive line texts and the length each is cut to. */
const LINE_TEXTS = { ProductCode: 64, ProductName: 256, ColourName: 256, SizeCode: 64, Status: 32 } as const;

const paymentSchema = z.object({
  Id: z.optional(id),
  Origin: z.optional(text(50)),
  CardType: z.optional(text(250)),
  Stan: z.optional(text(250)),
  Reference: z.optional(text(250)),
  MerchantId: z.optional(text(100)),
  AccountId: z.optional(text(100)),
  Amount: decimal,
});

const documentFields = {
  Id: id,
  OrderNumber: text(64).check(z.minLength(1)),
  PersonId: id,
  CurrencyCode: z.optional(z.string().check(z.regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code'))),
  payments: z.array(paymentSchema).check(z.maxLength(100)),
};

const orderSchema = z.object({
  ...documentFields,
  Email: z.optional(text(320)),
  lines: z.array(z.object({ ...lineFields, Id: id, Value: decimal })).check(z.maxLength(5000)),
});

const returnSchema = z.object({
  ...documentFields,
  OrigOrderNum: z.optional(text(64)),
  lines: z.array(z.object(lineFields)).check(z.minLength(1), z.maxLength(5000)),
});

/** Trimmed text of each named child; empty elements (`<AuthCode />`) count as absent. */
function fields(element: XmlElement | undefined, names: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  if (!element) return values;
  for (const name of names) {
    const value = childElement(element, name)?.text.trim();
    if (value) values[name] = value;
  }
  return values;
}

const LINE_NAMES = Object.keys(lineFields);
const PAYMENT_NAMES = Object.keys(paymentSchema.shape);

function rawDocument(element: XmlElement, names: readonly string[]) {
  const details = childElement(element, 'OrderDetails');
  const payments = childElement(element, 'Payments');
  const email = fields(childElement(element, 'Contacts'), ['Email']).Email;
  const currencyCode = fields(childElement(element, 'Currency'), ['Code']).Code;
  return {
    ...fields(element, names),
    ...(email !== undefined && { Email: email }),
    ...(currencyCode !== undefined && { CurrencyCode: currencyCode }),
    lines: details ? childElements(details, 'OrderDetail').map((line) => fields(line, LINE_NAMES)) : [],
    payments: payments ? childElements(payments, 'PaymentDetail').map((payment) => fields(payment, PAYMENT_NAMES)) : [],
  };
}

function parseWith<T>(schema: z.ZodMiniType<T>, raw: unknown, what: string): T {
  const result = schema.safeParse(raw);
  if (!result.success) throw new Ap21ResponseError(`Ap21 ${what} is malformed: ${describeIssues(result.error.issues)}`);
  return result.data;
}

/** Money and unit conversions that can still fail (precision beyond the currency, huge values). */
function convert<T>(what: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof InvalidMoneyError || error instanceof RangeError) throw new Ap21ResponseError(`Ap21 ${what} is malformed: ${error.message}`);
    throw error;
  }
}

const wholeUnits = (value: string) => Number.parseInt(value, 10);

/** A descriptive text, cut to `max` characters. */
function description(element: XmlElement, name: string, max: number): string | undefined {
  const value = childElement(element, name)?.text.trim();
  return value ? value.slice(0, max) : undefined;
}

/** An informational amount (a list price, a total): kept when it is money of `currency`, else left out. */
function informationalAmount(element: XmlElement, name: string, currency: string): Money | undefined {
  const value = childElement(element, name)?.text.trim();
  if (!value || !DECIMAL.test(value)) return undefined;
  try {
    return parseDecimal(value, currency);
  } catch {
    return undefined;
  }
}

/** An informational id (a return reason): kept when it is an Ap21 id. */
function informationalId(element: XmlElement, name: string): string | undefined {
  const value = childElement(element, name)?.text.trim();
  return value && ID.test(value) ? value : undefined;
}

function informationalTime(element: XmlElement, timeZone: string): string | undefined {
  const value = childElement(element, 'OrderDateTime')?.text.trim();
  if (!value || !DATE_TIME.test(value)) return undefined;
  try {
    return fromAp21DateTime(value, timeZone);
  } catch {
    return undefined;
  }
}

function lineDescriptions(line: XmlElement) {
  const described: { productCode?: string; productName?: string; colourName?: string; sizeCode?: string; status?: string; nonReturnable?: boolean } = {};
  // Only an explicit true marks the line; absent, empty or anything else leaves it returnable.
  if (description(line, 'NonReturnable', 8)?.toLowerCase() === 'true') described.nonReturnable = true;
  const keys = { ProductCode: 'productCode', ProductName: 'productName', ColourName: 'colourName', SizeCode: 'sizeCode', Status: 'status' } as const;
  for (const [name, max] of Object.entries(LINE_TEXTS) as [keyof typeof LINE_TEXTS, number][]) {
    const value = description(line, name, max);
    if (value !== undefined) described[keys[name]] = value;
  }
  return described;
}

function readPayments(payments: readonly z.infer<typeof paymentSchema>[], currency: string): Ap21Payment[] {
  return payments.map((payment) => ({
    ...(payment.Id !== undefined && { paymentId: payment.Id }),
    ...(payment.Origin !== undefined && { origin: payment.Origin }),
    ...(payment.CardType !== undefined && { cardType: payment.CardType }),
    ...(payment.Stan !== undefined && { stan: payment.Stan }),
    ...(payment.Reference !== undefined && { reference: payment.Reference }),
    ...(payment.MerchantId !== undefined && { merchantId: payment.MerchantId }),
    ...(payment.AccountId !== undefined && { accountId: payment.AccountId }),
    amount: parseDecimal(payment.Amount, currency),
  }));
}

const DOCUMENT_NAMES = ['Id', 'OrderNumber', 'PersonId'];
const RETURN_NAMES = [...DOCUMENT_NAMES, 'OrigOrderNum'];

/** Element names about returns or refunds; `NonReturnable` is a product fact, not a return. */
const RETURN_MARK = /return|refund/i;
const NOT_A_MARK = /^nonreturnable$/i;
/** A value that says nothing happened: empty, zero, false. */
const EMPTY_MARK = /^(?:|0+(?:\.0+)?|false|no|none)$/i;

/** The `returnMarks` of an order: its own and its lines' elements about returns that hold a value. */
function returnMarksOf(element: XmlElement, lineElements: readonly XmlElement[]): string[] {
  const marks = new Set<string>();
  const scan = (parent: XmlElement, prefix: string) => {
    for (const child of parent.children) {
      if (!RETURN_MARK.test(child.name) || NOT_A_MARK.test(child.name)) continue;
      if (child.children.length > 0 || !EMPTY_MARK.test(child.text.trim())) marks.add(`${prefix}${child.name}`);
    }
  };
  scan(element, '');
  for (const line of lineElements) scan(line, 'OrderDetail/');
  return [...marks];
}

/** An `<Order>` element (single-order GET or an entry of the `<Orders>` collection). */
export function readOrder(element: XmlElement, context: ReadContext): Ap21Order {
  const raw = parseWith(orderSchema, rawDocument(element, DOCUMENT_NAMES), 'order');
  const what = `order ${raw.Id}`;
  const lineElements = childElements(childElement(element, 'OrderDetails') ?? element, 'OrderDetail');
  return convert(what, () => {
    const currency = raw.CurrencyCode ?? context.currency;
    const totalDue = informationalAmount(element, 'TotalDue', currency);
    const orderedAt = informationalTime(element, context.timeZone);
    const partnerOrderId = description(element, 'PartnerOrderId', 64);
    const origOrderNumber = description(element, 'OrigOrderNum', 64);
    const returnMarks = returnMarksOf(element, lineElements);
    return {
      orderId: raw.Id,
      orderNumber: raw.OrderNumber,
      personId: raw.PersonId,
      ...(partnerOrderId !== undefined && { partnerOrderId }),
      ...(origOrderNumber !== undefined && { origOrderNumber }),
      ...(orderedAt !== undefined && { orderedAt }),
      currency,
      ...(raw.Email !== undefined && { email: raw.Email }),
      ...(totalDue !== undefined && { totalDue }),
      lines: raw.lines.map((line, i) => {
        const lineElement = lineElements[i]!;
        const price = informationalAmount(lineElement, 'Price', currency);
        const discount = informationalAmount(lineElement, 'Discount', currency);
        return {
          lineId: line.Id,
          skuId: line.SkuId,
          quantity: wholeUnits(line.Quantity),
          value: parseDecimal(line.Value, currency),
          ...(price !== undefined && { price }),
          ...(discount !== undefined && { discount }),
          ...lineDescriptions(lineElement),
        };
      }),
      payments: readPayments(raw.payments, currency),
      paymentsVisible: true,
      ...(returnMarks.length > 0 && { returnMarks }),
    };
  });
}

/** A `<ReturnOrder>` element. Quantities must be negative, as Ap21 itself requires. */
export function readReturn(element: XmlElement, context: ReadContext & { readonly paymentsVisible: boolean }): Ap21Return {
  const raw = parseWith(returnSchema, rawDocument(element, RETURN_NAMES), 'return');
  const what = `return ${raw.Id}`;
  const lineElements = childElements(childElement(element, 'OrderDetails') ?? element, 'OrderDetail');
  return convert(what, () => {
    const currency = raw.CurrencyCode ?? context.currency;
    const lines = raw.lines.map((line, i): Ap21ReturnLine => {
      const quantity = wholeUnits(line.Quantity);
      if (quantity >= 0) throw new Ap21ResponseError(`Ap21 ${what} has a line with quantity ${quantity}; returned units are negative`);
      const lineElement = lineElements[i]!;
      const returnReasonId = informationalId(lineElement, 'ReturnReasonId');
      const price = informationalAmount(lineElement, 'Price', currency);
      const status = description(lineElement, 'Status', LINE_TEXTS.Status);
      return {
        ...(line.Id !== undefined && { lineId: line.Id }),
        skuId: line.SkuId,
        quantity,
        ...(returnReasonId !== undefined && { returnReasonId }),
        ...(price !== undefined && { price }),
        ...(line.Value !== undefined && { value: parseDecimal(line.Value, currency) }),
        ...(status !== undefined && { status }),
      };
    });
    const totalDue = informationalAmount(element, 'TotalDue', currency);
    const returnAuthorisationNumber = description(element, 'ReturnAuthorisationNumber', 64);
    const status = description(element, 'Status', LINE_TEXTS.Status);
    return {
      returnId: raw.Id,
      orderNumber: raw.OrderNumber,
      ...(raw.OrigOrderNum !== undefined && { origOrderNumber: raw.OrigOrderNum }),
      personId: raw.PersonId,
      ...(returnAuthorisationNumber !== undefined && { returnAuthorisationNumber }),
      ...(status !== undefined && { status }),
      currency,
      ...(totalDue !== undefined && { totalDue }),
      lines,
      payments: context.paymentsVisible ? readPayments(raw.payments, currency) : [],
      paymentsVisible: context.paymentsVisible,
    };
  });
}

/** Characters of an unreadable document kept for an operator (the store keeps at most 16 KiB of raw text). */
const MAX_RAW_CHARS = 12_000;

/**
 * One document of an Ap21 list, read on its own: the value, or why it cannot be used. Either way
 * with a fingerprint of its content (RowNumber aside, which only says where it sits in the list):
 * the same document always has the same fingerprint, and any change Ap21 makes to it changes it.
 */
export type Ap21Read<T> =
  | { readonly kind: 'read'; readonly value: T; readonly fingerprint: string }
  | { readonly kind: 'unreadable'; readonly unreadable: Ap21Unreadable; readonly fingerprint: string };

export interface Ap21Unreadable {
  /** `<Id>` when it is an Ap21 id, even if nothing else could be read. */
  readonly id?: string;
  readonly personId?: string;
  readonly orderNumber?: string;
  readonly reason: string;
  /** The document as received, cut to MAX_RAW_CHARS. */
  readonly raw: string;
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

function fingerprintOf(element: XmlElement): string {
  return sha(canonicalXml(element, ['RowNumber']));
}

/**
 * A one-order answer that could not be parsed at all (not well-formed XML, too large): what its
 * text still tells, for an operator. Its fingerprint is of the text, RowNumber aside.
 */
export function unreadableAnswer(document: string | undefined, reason: string): Ap21Read<never> {
  const text = document ?? '';
  const id = /<Order>\s*<Id>\s*(\d{1,22})\s*<\/Id>/.exec(text)?.[1];
  const personId = /<PersonId>\s*(\d{1,22})\s*<\/PersonId>/.exec(text)?.[1];
  const unreadable: Ap21Unreadable = {
    ...(id !== undefined && { id }),
    ...(personId !== undefined && { personId }),
    reason: bounded(reason, MAX_MESSAGE_CHARS),
    raw: bounded(text, MAX_RAW_CHARS),
  };
  return { kind: 'unreadable', unreadable, fingerprint: sha(text.replace(/<RowNumber>[^<]{0,24}<\/RowNumber>/g, '') || reason) };
}

/** Reads `element` with `read`; a document Ap21 sent wrong becomes `unreadable`, anything else is thrown. */
export function readEach<T>(element: XmlElement, read: (element: XmlElement) => T): Ap21Read<T> {
  const fingerprint = fingerprintOf(element);
  try {
    return { kind: 'read', value: read(element), fingerprint };
  } catch (error) {
    if (!(error instanceof Ap21ResponseError)) throw error;
    const known = (name: string, pattern: RegExp) => {
      const value = childElement(element, name)?.text.trim();
      return value && pattern.test(value) ? value : undefined;
    };
    const orderNumber = description(element, 'OrderNumber', 64);
    const unreadable: Ap21Unreadable = {
      ...(known('Id', ID) !== undefined && { id: known('Id', ID)! }),
      ...(known('PersonId', ID) !== undefined && { personId: known('PersonId', ID)! }),
      ...(orderNumber !== undefined && { orderNumber }),
      reason: bounded(error.message, MAX_MESSAGE_CHARS),
      raw: bounded(canonicalXml(element, ['RowNumber']), MAX_RAW_CHARS),
    };
    return { kind: 'unreadable', unreadable, fingerprint };
  }
}

/**
 * Ap21 date-times carry no offset (`2020-12-01T11:33:07`, docs/providers.md §3, Retail API guide p.127). These two convert
 * between that wall clock in `timeZone` and UTC ISO, DST included, whole seconds only.
 */
const wallClockFormats = new Map<string, Intl.DateTimeFormat>();

function wallClock(epochMs: number, timeZone: string): number[] {
  let format = wallClockFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    wallClockFormats.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(epochMs).map((part) => [part.type, part.value]));
  return ['year', 'month', 'day', 'hour', 'minute', 'second'].map((type) => Number(parts[type]));
}

function offsetMs(epochMs: number, timeZone: string): number {
  const [year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0] = wallClock(epochMs, timeZone);
  return Date.UTC(year, month - 1, day, hour, minute, second) - Math.floor(epochMs / 1000) * 1000;
}

export function toAp21DateTime(iso: string, timeZone: string): string {
  const epochMs = Date.parse(iso);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(iso) || !Number.isFinite(epochMs)) throw new RangeError(`not an ISO date-time: ${bounded(iso, 64)}`);
  const [year, month, day, hour, minute, second] = wallClock(epochMs, timeZone).map((n, i) => String(n).padStart(i === 0 ? 4 : 2, '0'));
  return `${year}-${month}-${day}T${hour}:${minute}:${second}`;
}

export function fromAp21DateTime(text: string, timeZone: string): string {
  const match = DATE_TIME.exec(text.trim());
  if (!match) throw new RangeError(`not an Ap21 date-time: ${bounded(text, 64)}`);
  const [, year, month, day, hour, minute, second] = match.map(Number);
  const asUtc = Date.UTC(year!, month! - 1, day, hour, minute, second);
  if (!Number.isFinite(asUtc) || new Date(asUtc).getUTCDate() !== day) throw new RangeError(`not an Ap21 date-time: ${bounded(text, 64)}`);
  const firstGuess = asUtc - offsetMs(asUtc, timeZone);
  return new Date(asUtc - offsetMs(firstGuess, timeZone)).toISOString();
}

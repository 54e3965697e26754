/**
 * What the Ap21 simulator holds, as records: persons, orders (their lines and payments) and
 * returns, the seeds tests and the demo make them from, and the ways an order's data can be wrong.
 * The documents they are served as are documents.ts; the state that holds them is world.ts.
 */

/** The tenders an Ap21 payment's `Origin` may name (docs/providers.md §3); a seed may use any of them. */
export const DOCUMENTED_TENDERS = ['CreditCard', 'GiftVoucher', 'Zip', 'Openpay', 'DirectDebit', 'AdyenWallet'] as const;

export interface SimPaymentSeed {
  /** One of DOCUMENTED_TENDERS, or any other text a real installation may hold. */
  readonly origin?: string;
  readonly cardType?: string;
  readonly stan?: string;
  readonly reference?: string;
  readonly merchantId?: string;
  readonly accountId?: string;
  readonly amountMinor: number;
}

export interface SimLineSeed {
  readonly skuId: string;
  readonly quantity: number;
  /** Unit price; the line's Value is quantity × price − discount. */
  readonly priceMinor: number;
  readonly discountMinor?: number;
  readonly productName?: string;
  readonly productCode?: string;
  readonly colourCode?: string;
  readonly colourName?: string;
  readonly sizeCode?: string;
  readonly nonReturnable?: boolean;
  /** The line's `Status` (default Processing). */
  readonly status?: 'Processing' | 'Shipped' | 'Cancelled' | 'Returned';
}

export interface SimLine extends SimLineSeed {
  readonly lineId: string;
}

export interface SimPayment extends SimPaymentSeed {
  readonly paymentId: string;
}

export interface SimPerson {
  readonly personId: string;
  readonly firstname: string;
  readonly surname: string;
  readonly email?: string;
  updatedAt: number;
}

/**
 * Ways an order document can be wrong, as data in a real installation is: each is served until
 * the order is corrected (which, as any change, moves it to the end of the changed-orders list).
 */
export type Ap21Corruption =
  /** A Price with more decimals than the currency (informational: refund-relay prices from Value). */
  | 'price_precision'
  /** A line Value with more decimals than the currency: what the customer paid is unknowable. */
  | 'value_precision'
  /** `<Value />` on a line. */
  | 'empty_value'
  /** A product name of 300 characters (the guide says 30; installations hold longer). */
  | 'long_product_name'
  /** `Currency/Code` that is no ISO 4217 currency. */
  | 'unknown_currency'
  /** Elements no guide version documents, at order and line level. */
  | 'unknown_elements'
  /** An unescaped `&` in the delivery instructions: the whole page is then not well-formed XML. */
  | 'broken_xml';

export interface SimOrder {
  readonly orderId: string;
  readonly personId: string;
  readonly orderNumber: string;
  readonly email?: string;
  readonly lines: readonly SimLine[];
  readonly payments: readonly SimPayment[];
  readonly orderedAt: number;
  /** An order giving units back (Refundid's negative order) may name the order they came from. */
  readonly origOrderNumber?: string;
  updatedAt: number;
  corruption?: Ap21Corruption;
  /** A line `Status` other than `Processing`, by line id (`Ap21Simulator.setLineStatus`, by SKU). */
  lineStatuses?: Readonly<Record<string, string>>;
}

export interface SimReturnLine extends SimLine {
  readonly returnReasonId: string;
  readonly returnReasonNotes?: string;
  readonly carrier?: string;
  readonly conNote?: string;
}

export interface SimReturn {
  readonly returnId: string;
  readonly orderId: string;
  readonly personId: string;
  readonly orderNumber: string;
  readonly origOrderNumber: string;
  readonly returnAuthorisationNumber: string;
  readonly lines: readonly SimReturnLine[];
  readonly payments: readonly SimPayment[];
  readonly stockUpdate: boolean;
  readonly createdAt: number;
  /** The return's own `<Status>` (`Processing` until a test sets another, `Ap21Simulator.setReturnStatus`). */
  status?: string;
  /** When the return last changed in Ap21 (its status); `createdAt` until then. */
  updatedAt?: number;
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

export interface SimFailure {
  readonly status: number;
  readonly code?: number;
  readonly retryAfterSeconds?: number;
  /** A raw body instead of an `<Ap21Error>`, e.g. a malformed document with status 200. */
  readonly body?: string;
}

/** A line's value: quantity × price − discount (a negative quantity gives the discount back). */
export const lineValue = (line: SimLineSeed) => line.quantity * line.priceMinor - Math.sign(line.quantity) * (line.discountMinor ?? 0);
export const linesTotal = (lines: readonly SimLineSeed[]) => lines.reduce((sum, line) => sum + lineValue(line), 0);

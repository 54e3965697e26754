import * as z from 'zod/mini';
import { ConfigurationError, parseEnvironment, wholeWithin } from '../commons/config';
import { ap21Origin, orderNumberKey } from '../domain/ap21-origin';
import type { NewOrder, NewPayment, PaymentProvider } from '../domain/order';
import { PAYMENT_PROVIDERS, isPaymentProvider } from '../providers/registry';
import { DEFAULT_EXCHANGE_STATUSES, type ExchangeRules } from '../domain/exchanges';
import { DEFAULT_RECEIPT_WAIT_DAYS, DEFAULT_RECEIVED_RETURN_STATUSES, parsePayOnReceipt, type ReceiptRules } from '../domain/receipt';
import { DEFAULT_NON_RETURNABLE_STATUSES, notReturnableReason } from '../domain/returnability';
import { DEFAULT_OPERATOR_TENDERS, tenderName, type TenderRules } from '../domain/tenders';
import type { Ap21Order, Ap21OrderLine, Ap21Payment } from '../providers/ap21/schemas';
import { loadExchangePolicy } from './exchange-policy';

/**
 * How an Ap21 order becomes our order ledger, and the ids that tie our records to Ap21's. Ap21
 * is the source of truth for orders: the ledger is opened from it once and never re-synced.
 */

/** Our order id for an Ap21 order (its `Id`, unique per installation); Refundid's order fetch finds it by order number. */
export const ledgerOrderId = (ap21OrderId: string): string => `ap21-${ap21OrderId}`;

/** Our refund id for an Ap21 return: deterministic, so ingesting the return again finds it. */
export const returnRefundId = (ap21ReturnId: string): string => `ap21-${ap21ReturnId}`;

/**
 * The refund of a return whose exchange Ap21 reversed (docs/design.md §2.8): the return's own id
 * stays on the ended exchange record, so this one is deterministic too.
 */
export const afterExchangeRefundId = (ap21ReturnId: string): string => `ap21-${ap21ReturnId}-after-exchange`;

/** The refund ref naming the Ap21 return a refund stands for (set on linked Refundid RMAs too). */
export const AP21_RETURN_REF = 'ap21ReturnId';

/** The refund ref naming the Ap21 exchange order that settled a return (docs/design.md §2.8). */
export const AP21_EXCHANGE_ORDER_REF = 'ap21ExchangeOrder';

export type PaymentField = 'MerchantId' | 'CardType' | 'Origin';

export interface PaymentProviderRule {
  readonly field: PaymentField;
  /** Compared trimmed and case-insensitively. */
  readonly value: string;
  readonly provider: PaymentProvider;
}

export interface Ap21LedgerSettings {
  readonly paymentProviders: readonly PaymentProviderRule[];
  /** Where a card's last four digits may be read; absent: nowhere (Ap21 documents no such field). */
  readonly cardLastFour?: { readonly field: 'Reference' | 'AccountId'; readonly pattern: RegExp };
  /** Line statuses whose units are not returnable (docs/design.md §2.7). */
  readonly nonReturnableStatuses: readonly string[];
  /** Which payment a return's money goes back to, and which tenders only an operator refunds (docs/design.md §2.7). */
  readonly tenders: TenderRules;
  /** Which returns are exchanges, and what an exchange refunds (docs/design.md §2.8). */
  readonly exchanges: ExchangeRules;
  /** Which channels pay only once Ap21 shows the return received (docs/design.md §2.9); absent: all pay when it is seen. */
  readonly receipt?: ReceiptRules;
}

const RULE = /^(MerchantId|CardType|Origin):([^,=:]{1,100})=([a-z_]+)$/;

/** Refundid's documented Ap21 set-up: merchant id `Refundid`, card type `REFUNDID` (docs/providers.md §2). */
const DEFAULT_PAYMENT_PROVIDERS = 'MerchantId:Refundid=refundid,CardType:Refundid=refundid';

/** Four digits, optionally after mask characters (`************7001`, `XXXX XXXX XXXX 7001`); never a full card number. */
const DEFAULT_CARD_LAST_FOUR_PATTERN = String.raw`^[*Xx -]{0,24}(\d{4})$`;

function parsePaymentProviderRules(text: string): PaymentProviderRule[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const match = RULE.exec(entry);
      const provider = match?.[3];
      if (!match || !provider || !isPaymentProvider(provider)) {
        throw new ConfigurationError(`AP21_PAYMENT_PROVIDERS entry "${entry}" is not <MerchantId|CardType|Origin>:<value>=<${PAYMENT_PROVIDERS.join('|')}>`);
      }
      return { field: match[1] as PaymentField, value: match[2]!.trim().toLowerCase(), provider };
    });
}

const schema = z.object({
  /**
   * Which of refund-relay's connectors refunds an Ap21 payment, by the payment's MerchantId (the
   * retailer's SPayGate entry), CardType or Origin; the first rule that matches wins, no match is
   * `other` (no connector: the refund waits for an operator). UNCONFIRMED: the values are each
   * retailer's own, so every stage lists its gateways, e.g.
   * `MerchantId:AddonPayments=addon_payments,CardType:PayPro=paypro,Origin:Optty=optty`.
   */
  AP21_PAYMENT_PROVIDERS: z._default(z.string().check(z.maxLength(4000)), DEFAULT_PAYMENT_PROVIDERS),
  /**
   * The Ap21 payment field that carries the card's last four digits on this stage, if any
   * (docs/design.md §2.2: never invented). UNCONFIRMED: the documented payment block has none, so the
   * default is none and every card refund goes to card reversal.
   */
  AP21_CARD_LAST_FOUR_FIELD: z._default(z.enum(['none', 'Reference', 'AccountId']), 'none'),
  /** What that field must look like; its one capture group must be the four digits. */
  AP21_CARD_LAST_FOUR_PATTERN: z._default(z.string().check(z.minLength(1), z.maxLength(200)), DEFAULT_CARD_LAST_FOUR_PATTERN),
  /** Ap21 line statuses whose units cannot be returned, comma-separated (docs/design.md §2.7). */
  AP21_NON_RETURNABLE_STATUSES: z._default(z.string().check(z.maxLength(500)), DEFAULT_NON_RETURNABLE_STATUSES.join(',')),
  /**
   * Split tenders: the tenders (payment `Origin`, else `CardType`) refunded first, comma-separated;
   * unlisted ones after them, in Ap21's payment order. Empty: Ap21's payment order alone.
   */
  AP21_TENDER_ORDER: z._default(z.string().check(z.maxLength(500)), ''),
  /** Tenders only an operator refunds, whatever AP21_PAYMENT_PROVIDERS says (docs/design.md §2.7). */
  AP21_OPERATOR_TENDERS: z._default(z.string().check(z.maxLength(500)), DEFAULT_OPERATOR_TENDERS.join(',')),
  /** Ap21 return statuses that say a return was settled by an exchange, comma-separated (docs/design.md §2.8). */
  AP21_EXCHANGE_STATUSES: z._default(z.string().check(z.maxLength(500)), DEFAULT_EXCHANGE_STATUSES.join(',')),
  /**
   * Channels whose money moves only once Ap21 shows the return received, comma-separated: `apace`,
   * `addon_payments`, `paypro`, `optty`, or `reversal` for all three (docs/design.md §2.9). Empty: every
   * channel pays when the return is seen.
   */
  AP21_PAY_ON_RECEIPT: z._default(z.string().check(z.maxLength(200)), ''),
  /** Ap21 return statuses that mean received, comma-separated (UNCONFIRMED names, docs/providers.md §3). */
  AP21_RECEIVED_RETURN_STATUSES: z._default(z.string().check(z.maxLength(500)), DEFAULT_RECEIVED_RETURN_STATUSES.join(',')),
  /** How long a refund waits for its return to be received before an operator is told. */
  AP21_RECEIPT_WAIT_DAYS: wholeWithin(DEFAULT_RECEIPT_WAIT_DAYS, 1, 365),
});

const NAME_LIST = /^[A-Za-z0-9 _-]{1,50}$/;

function nameList(variable: string, text: string): string[] {
  const names = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const bad = names.find((name) => !NAME_LIST.test(name));
  if (bad !== undefined) throw new ConfigurationError(`${variable} entry "${bad}" is not a name (letters, digits, space, _ or -)`);
  return names;
}

function receiptRules(data: { AP21_PAY_ON_RECEIPT: string; AP21_RECEIVED_RETURN_STATUSES: string; AP21_RECEIPT_WAIT_DAYS: number }): ReceiptRules {
  const parsed = parsePayOnReceipt(data.AP21_PAY_ON_RECEIPT);
  if ('problem' in parsed) throw new ConfigurationError(`AP21_PAY_ON_RECEIPT: ${parsed.problem}`);
  const receivedStatuses = nameList('AP21_RECEIVED_RETURN_STATUSES', data.AP21_RECEIVED_RETURN_STATUSES);
  if (parsed.channels.size > 0 && receivedStatuses.length === 0)
    throw new ConfigurationError('AP21_RECEIVED_RETURN_STATUSES is empty: a channel paid on receipt would never be paid');
  return { payOnReceipt: parsed.channels, receivedStatuses, waitMs: data.AP21_RECEIPT_WAIT_DAYS * 86_400_000 };
}

const receiptSchema = z.pick(schema, { AP21_PAY_ON_RECEIPT: true, AP21_RECEIVED_RETURN_STATUSES: true, AP21_RECEIPT_WAIT_DAYS: true });

/** The stage's receipt rules alone (docs/design.md §2.9), for the dispatcher, which reads no other Ap21 setting. */
export function loadReceiptRules(env: NodeJS.ProcessEnv = process.env): ReceiptRules {
  return receiptRules(parseEnvironment(receiptSchema, env, 'Ap21 receipt '));
}

export function loadAp21LedgerSettings(env: NodeJS.ProcessEnv = process.env): Ap21LedgerSettings {
  const settings = parseEnvironment(schema, env, 'Ap21 ledger ');
  const { AP21_PAYMENT_PROVIDERS, AP21_CARD_LAST_FOUR_FIELD, AP21_CARD_LAST_FOUR_PATTERN } = settings;
  const base = {
    paymentProviders: parsePaymentProviderRules(AP21_PAYMENT_PROVIDERS),
    nonReturnableStatuses: nameList('AP21_NON_RETURNABLE_STATUSES', settings.AP21_NON_RETURNABLE_STATUSES),
    tenders: {
      order: nameList('AP21_TENDER_ORDER', settings.AP21_TENDER_ORDER),
      operatorTenders: nameList('AP21_OPERATOR_TENDERS', settings.AP21_OPERATOR_TENDERS),
    },
    exchanges: { policy: loadExchangePolicy(env), statuses: nameList('AP21_EXCHANGE_STATUSES', settings.AP21_EXCHANGE_STATUSES) },
    receipt: receiptRules(settings),
  };
  if (AP21_CARD_LAST_FOUR_FIELD === 'none') return base;
  let pattern: RegExp;
  try {
    pattern = new RegExp(AP21_CARD_LAST_FOUR_PATTERN);
  } catch {
    throw new ConfigurationError('AP21_CARD_LAST_FOUR_PATTERN is not a regular expression');
  }
  if (new RegExp(`${pattern.source}|`).exec('')!.length !== 2) throw new ConfigurationError('AP21_CARD_LAST_FOUR_PATTERN must have exactly one capture group');
  return { ...base, cardLastFour: { field: AP21_CARD_LAST_FOUR_FIELD, pattern } };
}

const fieldOf = (payment: Ap21Payment, field: PaymentField): string | undefined =>
  ({ MerchantId: payment.merchantId, CardType: payment.cardType, Origin: payment.origin })[field];

export function paymentProviderOf(payment: Ap21Payment, rules: readonly PaymentProviderRule[]): PaymentProvider {
  const rule = rules.find((candidate) => fieldOf(payment, candidate.field)?.trim().toLowerCase() === candidate.value);
  return rule?.provider ?? 'other';
}

/** The last four digits from the configured field, only when it matches the pattern exactly. */
export function cardLastFourOf(payment: Ap21Payment, source: Ap21LedgerSettings['cardLastFour']): string | undefined {
  if (!source) return undefined;
  const value = source.field === 'Reference' ? payment.reference : payment.accountId;
  const digits = value === undefined ? undefined : source.pattern.exec(value.trim())?.[1];
  return digits !== undefined && /^\d{4}$/.test(digits) ? digits : undefined;
}

/** Why a line's units cannot be returned, as Ap21 shows it now (its `Status` and `NonReturnable`). */
export function lineReturnFacts(line: Ap21OrderLine, settings: Pick<Ap21LedgerSettings, 'nonReturnableStatuses'>): { nonReturnable?: string } {
  const reason = notReturnableReason(line, settings.nonReturnableStatuses);
  return reason === undefined ? {} : { nonReturnable: reason };
}

/**
 * Our ledger for an Ap21 order: lines with units bought (`OrderDetail/Id` as line id, SKU, net
 * value, why they are not returnable when they are not) and the payments money came in through
 * (with their tender). Lines and payments that are not sales (zero or
 * negative quantities, credits) are left out: there is nothing to refund on them.
 */
export function ledgerOrderFrom(order: Ap21Order, settings: Ap21LedgerSettings): NewOrder {
  const payments: NewPayment[] = order.payments.flatMap((payment, index) => {
    if (payment.amount.minor <= 0) return [];
    const cardLastFour = cardLastFourOf(payment, settings.cardLastFour);
    const tender = tenderName(payment);
    return [
      {
        paymentId: payment.paymentId ?? `p${index + 1}`,
        capturedMinor: payment.amount.minor,
        provider: paymentProviderOf(payment, settings.paymentProviders),
        ...(payment.stan !== undefined && { transactionId: payment.stan }),
        ...(payment.reference !== undefined && { reference: payment.reference }),
        ...(cardLastFour !== undefined && { cardLastFour }),
        ...(tender !== undefined && { tender }),
      },
    ];
  });
  return {
    orderId: ledgerOrderId(order.orderId),
    currency: order.currency,
    lines: order.lines
      .filter((line) => line.quantity > 0)
      .map((line) => ({
        ...lineReturnFacts(line, settings),
        lineId: line.lineId,
        quantity: line.quantity,
        valueMinor: line.value.minor,
        sku: line.skuId,
        ...(line.productName !== undefined && { title: line.productName }),
      })),
    payments,
    ...(order.email !== undefined && { customer: { email: order.email } }),
    origin: ap21Origin({ personId: order.personId, orderId: order.orderId, orderNumber: order.orderNumber }),
    lookupKey: orderNumberKey(order.orderNumber),
  };
}

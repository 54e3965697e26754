import { childElement, childElements, XmlError, type XmlElement } from '../../lambdas/commons/xml';
import { parseDecimal } from '../../lambdas/domain/money';
import { AP21_ERROR_CODES } from '../../lambdas/providers/ap21/statuses';
import type { SimOrder, SimPaymentSeed } from './model';

/**
 * What Ap21 accepts as a return (guide 2025.1, `POST …/Returns`): the payload as the simulator reads
 * it, and the validation codes it answers for one it refuses.
 */
export interface ReturnCandidate {
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

export type Refusal = readonly [code: number, description: string];

/** What the checks need to know of the installation. */
export interface ReturnRules {
  readonly returnReasonIds: ReadonlySet<string>;
  readonly orderNumberTaken: (orderNumber: string) => boolean;
}

function text(element: XmlElement, name: string): string | undefined {
  return childElement(element, name)?.text.trim() || undefined;
}

/** A posted `<ReturnOrder>` at payload `version` (payments from 4.0); XmlError or InvalidMoneyError when unreadable. */
export function readReturnCandidate(root: XmlElement, version: number, currency: string): ReturnCandidate {
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
      amountMinor: parseDecimal(text(payment, 'Amount') ?? '', currency).minor,
    })),
  };
}

/** Why Ap21 refuses `candidate` as a return of `order` posted under `personId`, or undefined. */
export function refusalOf(order: SimOrder, personId: string, candidate: ReturnCandidate, rules: ReturnRules): Refusal | undefined {
  const codes = AP21_ERROR_CODES;
  if (!candidate.personId) return [codes.personIdMissing, 'Person ID is missing from the return order'];
  if (candidate.personId !== personId) return [codes.personIdMismatch, 'Person ID from URL is different to payload'];
  if (!candidate.origOrderNumber) return [codes.origOrderNumberMissing, 'Original Order Number is missing from the payload'];
  if (candidate.origOrderNumber !== order.orderNumber) return [codes.origOrderNumberInvalid, `Original order number ${candidate.origOrderNumber} is not valid`];
  if (candidate.orderNumber && rules.orderNumberTaken(candidate.orderNumber)) return [codes.duplicateOrderNumber, 'The order number already exists'];
  const { lines } = candidate;
  if (lines.length === 0 || lines.some((line) => !Number.isFinite(line.quantity) || line.quantity === 0)) {
    return [codes.quantityMissingOrZero, 'Some of the quantities are missing or equals to zero'];
  }
  if (lines.some((line) => line.quantity > 0)) return [codes.quantityNotNegative, 'Some of the quantities are greater than zero'];
  for (const line of lines) {
    if (!order.lines.some((ordered) => ordered.skuId === line.skuId))
      return [codes.skuNotOnOriginalOrder, `SKUID ${line.skuId ?? ''} not found on original order`];
    if (!line.returnReasonId) return [codes.returnReasonMissing, 'Return reason id is missing'];
    if (!rules.returnReasonIds.has(line.returnReasonId)) return [codes.returnReasonInvalid, `Return reason id ${line.returnReasonId} is invalid`];
    if ((line.carrier?.length ?? 0) > 12) return [codes.carrierTooLong, 'Carrier name is too long'];
    if ((line.conNote?.length ?? 0) > 50) return [codes.conNoteTooLong, 'ConNote is too long'];
  }
  if (candidate.stockUpdate !== undefined && !/^(true|false)$/i.test(candidate.stockUpdate)) {
    return [codes.invalidStockUpdate, `Stock update '${candidate.stockUpdate}' is not valid. Must be 'True' or 'False'`];
  }
  return undefined;
}

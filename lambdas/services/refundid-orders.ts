import { DependencyUnavailableError, InvalidInputError } from '../commons/application-errors';
import { logger } from '../commons/logger';
import type { TtlCache } from '../commons/ttl-cache';
import { ap21OriginOf, orderNumberKey } from '../domain/ap21-origin';
import { DomainError, OrderNotFoundError } from '../domain/errors';
import { formatDecimal } from '../domain/money';
import { own, unitsValue, type Order } from '../domain/order';
import type { Ap21Order, Ap21OrderLine } from '../providers/ap21/schemas';
import { Ap21Error, Ap21InvalidRequestError, Ap21NotFoundError } from '../providers/ap21/statuses';
import type { OrderQuery, RapiOrder, RapiOrderLineItem } from '../providers/refundid/schemas';
import type { OrderStore, StoredOrder } from '../store/order-store';
import { inTenderOrder, isGiftTender, tenderName } from '../domain/tenders';
import { lineReturnFacts, type Ap21LedgerSettings } from './ap21-ledger';

/** What the order fetch needs from Ap21; `Ap21Client` is one. */
export interface Ap21OrderSource {
  getOrder(personId: string, orderId: string): Promise<Ap21Order>;
  /** Undefined when Ap21 has no order with this number. */
  getOrderByNumber(orderNumber: string): Promise<Ap21Order | undefined>;
}

/** Opens the ledger of an Ap21 order, as the poller does; `ReturnIntake` is one. */
export interface LedgerOpener {
  /** The rules the ledger is opened by: the order fetch answers by the same returnability and tender facts. */
  readonly ledgerSettings: Pick<Ap21LedgerSettings, 'nonReturnableStatuses' | 'tenders'>;
  openLedger(order: Ap21Order): Promise<StoredOrder>;
}

type LedgerFacts = LedgerOpener['ledgerSettings'];

class NoSuchAp21OrderError extends Error {
  override readonly name = 'NoSuchAp21OrderError';
}

/** One answer for "no such order" and "wrong e-mail", so the fetch never confirms an order exists. */
const noSuchOrder = () => new OrderNotFoundError('no order matches this order number and e-mail address');

const normalizedEmail = (email: string) => email.trim().toLowerCase();
const sameEmail = (known: string | undefined, given: string) => known !== undefined && normalizedEmail(known) === normalizedEmail(given);

/** Ap21 order numbers are at most 30 characters (guide: OrderNumber Alpha 30); a longer one is no Ap21 order. */
const AP21_ORDER_NUMBER_MAX = 30;

function title(line: Ap21OrderLine): string {
  const parts = [line.productName, line.colourName, line.sizeCode].filter((part): part is string => Boolean(part?.trim()));
  return parts.length > 0 ? parts.join(' / ') : (line.productCode ?? `SKU ${line.skuId}`);
}

function lineItem(order: Order, line: Ap21OrderLine, facts: LedgerFacts): RapiOrderLineItem {
  const ledger = Object.hasOwn(order.lines, line.lineId) ? order.lines[line.lineId] : undefined;
  // A unit worth nothing cannot be refunded: an RMA of it alone would be refused.
  const free = ledger !== undefined && unitsValue(ledger, 1) === 0;
  // Not returnable as the ledger recorded it when opened, or as Ap21 shows the line now (docs/design.md §2.7).
  const notReturnable = ledger?.nonReturnable ?? lineReturnFacts(line, facts).nonReturnable;
  const returnable = ledger && !free && notReturnable === undefined ? Math.max(0, Math.min(ledger.available, line.quantity)) : 0;
  const reasons: string[] = [];
  if (notReturnable !== undefined) reasons.push(notReturnable);
  else if (!ledger) reasons.push('This item is not yet recorded for returns; please try again later.');
  else if (free) reasons.push('This item was free of charge; there is nothing to refund.');
  else if (returnable < line.quantity) {
    // Units an exchange settled (docs/design.md §2.8) are told apart: the customer has the other item.
    const exchanged = Object.values(order.refunds)
      .filter((refund) => refund.channel === 'exchange' && refund.state === 'paid')
      .reduce((sum, refund) => sum + (own(refund.lines, line.lineId) ?? 0), 0);
    const unavailable = line.quantity - returnable;
    if (exchanged > 0) reasons.push(`${Math.min(exchanged, unavailable)} of ${line.quantity} exchanged for another item.`);
    if (unavailable > exchanged) reasons.push(`${unavailable - exchanged} of ${line.quantity} already refunded or being refunded.`);
  }
  // What the customer paid per unit (the line's net value shared over its units, rounded down):
  // whatever Refundid does with it, it can never lead to more than was paid.
  const unitMinor = Math.floor(line.value.minor / line.quantity);
  return {
    line_item_ref: line.lineId,
    title: title(line),
    price: { amount: formatDecimal({ minor: unitMinor, currency: line.value.currency }), currency: line.value.currency },
    quantity: line.quantity,
    returnable_quantity: returnable,
    product_ref: line.productCode ?? line.skuId,
    variant_ref: line.skuId,
    sku: ledger?.sku ?? line.skuId,
    non_returnable_reasons: reasons,
  };
}

/**
 * Refundid's `RapiOrder`: the order as Ap21 describes it, with `returnable_quantity` from our
 * ledger (units refunded or in flight through any channel are not returnable, nor are cancelled or
 * non-returnable lines). Lines are joined on the Ap21 `OrderDetail/Id`, which is the ledger's line
 * id; `merchant_order_ref` is our order id, so Refundid's RMA pushes name the ledger order directly.
 * `payment_method` is the payment a return is refunded to first under the tender rule
 * (docs/design.md §2.7), `is_giftcard_used` whether any payment was a gift voucher or card.
 */
export function rapiOrder(order: Order, ap21: Ap21Order, email: string, facts: LedgerFacts): RapiOrder {
  const paid = ap21.payments.filter((payment) => payment.amount.minor > 0);
  const byTender = Object.fromEntries(paid.map((payment, index) => [payment.paymentId ?? `p${index + 1}`, { ...payment, tender: tenderName(payment) }]));
  const first = inTenderOrder(byTender, facts.tenders)[0]?.[1];
  return {
    merchant_order_ref: order.orderId,
    order_number: ap21.orderNumber,
    email,
    purchased_at: ap21.orderedAt ?? order.createdAt,
    payment_method: first?.cardType?.trim() || first?.tender || 'unknown',
    is_giftcard_used: paid.some((payment) => isGiftTender(payment.origin) || isGiftTender(payment.cardType)),
    line_items: ap21.lines.filter((line) => line.quantity > 0).map((line) => lineItem(order, line, facts)),
  };
}

/**
 * Answers Refundid's order fetch. The order is found by its order number (the link written when
 * the order was opened), or by `merchant_order_ref` when Refundid passes back the reference we gave
 * it; it must carry its Ap21 ids, and the e-mail must match the order's. An order refund-relay has
 * not opened yet (placed before it went live, or not polled yet) is read from Ap21 by its number and
 * its ledger opened the way the poller opens it (one conditional write, so a poller opening it at the
 * same moment changes nothing): Ap21 is the source of order data in Refundid's full integration
 * (docs/providers.md §2). Only an order Ap21 does not have, or a wrong e-mail, is the same "not found".
 */
export class RefundidOrderDesk {
  constructor(
    private readonly store: OrderStore,
    private readonly ap21: Ap21OrderSource,
    private readonly ledgers: LedgerOpener,
    private readonly cache: TtlCache<Ap21Order>,
  ) {}

  async find(query: OrderQuery): Promise<RapiOrder> {
    const wanted = orderNumberKey(query.order_number);
    const linked = await this.store.findReference('order_number', wanted);
    const orderId = linked?.orderId ?? query.merchant_order_ref;
    // Consistent read on every call: returnable quantities are never cached.
    const order = orderId === undefined ? undefined : await this.store.getOrder(orderId);
    const origin = order && ap21OriginOf(order);
    if (!order || !origin || orderNumberKey(origin.orderNumber) !== wanted) return this.openFromAp21(query, wanted);
    const ap21 = await this.ap21Order(`${origin.personId}/${origin.orderId}`, origin.orderId, () => this.ap21.getOrder(origin.personId, origin.orderId));
    return this.answer(order, ap21, wanted, query.email, order.customer?.email);
  }

  /** The order read from Ap21 by its number, its ledger opened; the e-mail is checked before anything is written. */
  private async openFromAp21(query: OrderQuery, wanted: string): Promise<RapiOrder> {
    const number = query.order_number.trim();
    if (number.length > AP21_ORDER_NUMBER_MAX) throw noSuchOrder();
    // Any other 404 (not Ap21's "no data") is a wrong AP21_API_URL, not a missing order: Ap21 counts as unavailable.
    const ap21 = await this.ap21Order(`number/${wanted}`, number, async () => {
      const found = await this.ap21.getOrderByNumber(number);
      if (!found) throw new NoSuchAp21OrderError();
      return found;
    });
    if (orderNumberKey(ap21.orderNumber) !== wanted || !sameEmail(ap21.email, query.email)) throw noSuchOrder();
    let order: Order;
    try {
      order = await this.ledgers.openLedger(ap21);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      throw new InvalidInputError(`order ${ap21.orderNumber} has nothing that can be returned: ${error.message}`, 'nothing_to_return');
    }
    logger.info('order opened for Refundid from Ap21', { order_id: order.orderId, ap21_order: ap21.orderNumber });
    return this.answer(order, ap21, wanted, query.email);
  }

  private answer(order: Order, ap21: Ap21Order, wanted: string, email: string, fallbackEmail?: string): RapiOrder {
    const known = ap21.email ?? fallbackEmail;
    if (orderNumberKey(ap21.orderNumber) !== wanted || !known || !sameEmail(known, email)) throw noSuchOrder();
    return rapiOrder(order, ap21, known, this.ledgers.ledgerSettings);
  }

  private async ap21Order(key: string, what: string, read: () => Promise<Ap21Order>): Promise<Ap21Order> {
    const byNumber = key.startsWith('number/');
    try {
      return await this.cache.get(key, read);
    } catch (error) {
      if (error instanceof NoSuchAp21OrderError || error instanceof Ap21InvalidRequestError) throw noSuchOrder();
      if (error instanceof Ap21NotFoundError && !byNumber) throw noSuchOrder();
      if (!(error instanceof Ap21Error)) throw error;
      logger.error('Ap21 could not serve an order for Refundid', { ap21_order: what, error });
      throw new DependencyUnavailableError('the order system is unavailable; try again shortly', 'ap21_unavailable');
    }
  }
}

import type { Order } from './order';

/**
 * How an order opened from Ap21 remembers where it came from, in `Order.origin`: enough to fetch it
 * from Ap21 again (person id and order id, the two ids of `GET /Persons/{pid}/Orders/{oid}`) and to
 * find it by the order number the customer and Refundid know. Ledger line ids of such an order are
 * Ap21 `OrderDetail/Id`s, so a line of the ledger and a line of the Ap21 order are the same line.
 */
export interface Ap21OrderOrigin {
  readonly personId: string;
  readonly orderId: string;
  readonly orderNumber: string;
}

const KEYS = { personId: 'ap21PersonId', orderId: 'ap21OrderId', orderNumber: 'ap21OrderNumber' } as const;

/** The `origin` entries of an order opened from Ap21. */
export function ap21Origin(origin: Ap21OrderOrigin): Record<string, string> {
  return { system: 'ap21', [KEYS.personId]: origin.personId, [KEYS.orderId]: origin.orderId, [KEYS.orderNumber]: origin.orderNumber };
}

/** The Ap21 ids of an order, or undefined when it did not come from Ap21. */
export function ap21OriginOf(order: Pick<Order, 'origin'>): Ap21OrderOrigin | undefined {
  const personId = order.origin[KEYS.personId];
  const orderId = order.origin[KEYS.orderId];
  const orderNumber = order.origin[KEYS.orderNumber];
  return personId && orderId && orderNumber ? { personId, orderId, orderNumber } : undefined;
}

/**
 * The form an order number is looked up by: trimmed and upper-cased, because customers type order
 * numbers by hand and Refundid passes them on as typed. That two Ap21 order numbers never differ
 * by case alone is an assumption (the guide only says they are unique).
 */
export function orderNumberKey(orderNumber: string): string {
  return orderNumber.trim().toUpperCase();
}

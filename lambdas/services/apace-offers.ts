import { loadOnce } from '../commons/lazy';
import { ap21OriginOf } from '../domain/ap21-origin';
import type { Money } from '../domain/money';
import type { Order } from '../domain/order';

/**
 * Apace's `order_id`, which Apace shows the customer: the order number they know (Ap21's
 * `OrderNumber`), or our order id for an order that has none. Create and cancel use the same one,
 * since Apace's duplicate guard and our lookup of a lost create match offers by it, and Apace's
 * webhooks carry it back.
 */
export function apaceOrderId(order: Pick<Order, 'orderId' | 'origin'>): string {
  return ap21OriginOf(order)?.orderNumber ?? order.orderId;
}

/**
 * What the dispatcher needs from Apace. The Apace client implements it; keeping the port here lets
 * the dispatcher's rules be read without the HTTP details.
 */
export interface OfferItem {
  readonly itemId: string;
  readonly displayName: string;
  readonly sku?: string;
  readonly unitPrice?: Money;
  readonly quantity: number;
  /** The item's page in the shop (stage template `APACE_ITEM_URL_TEMPLATE`). */
  readonly url?: string;
}

export interface OfferRequest {
  /** Apace's `order_id`: the order number the customer knows (see `apaceOrderId` in dispatcher.ts). */
  readonly orderId: string;
  readonly refundId: string;
  /** From a trusted source only (docs/design.md §2.2); a refund without it never reaches Apace. */
  readonly cardLastFour: string;
  readonly amount: Money;
  readonly items: readonly OfferItem[];
  readonly expiresAt: string;
  readonly customer?: { readonly firstName?: string; readonly lastName?: string; readonly email?: string };
  readonly verificationUrl: string;
  readonly notificationUrl: string;
  /** The customer's order page and where Apace sends the customer after the refund (stage templates). */
  readonly orderUrl?: string;
  readonly redirectUrl?: string;
  /** No offer for this refund can be older than this: bounds the search for a lost create answer. */
  readonly createdSince?: string;
}

export type ApaceFailure = { readonly kind: 'failed'; readonly retryable: boolean; readonly reason: string };

export type OfferCreateResult =
  | { readonly kind: 'created'; readonly apaceRefundId: string; readonly link: string; readonly activeUntil?: string; readonly recovered: boolean }
  | ApaceFailure;

export type OfferCancelResult =
  | { readonly kind: 'cancelled' }
  /** Apace has no such live offer: nothing can pay through it. */
  | { readonly kind: 'not_found' }
  /** Apace refuses because its payout is under way, done or failed: the refund stays with Apace. */
  | { readonly kind: 'refused'; readonly payout: 'pending' | 'processed' | 'failed' | 'unknown'; readonly reason: string }
  | ApaceFailure;

/** Apace's own view of an offer, used to recover a lost webhook before giving up on an offer. */
export type OfferStatusResult =
  { readonly kind: 'found'; readonly payout: 'none' | 'pending' | 'processed' | 'failed' } | { readonly kind: 'not_found' } | ApaceFailure;

export type OfferEmailResult = { readonly kind: 'sent' } | ApaceFailure;

export interface ApaceOffers {
  /** Apace's Send Refund Offer Email; not idempotent at Apace (docs/providers.md §1). */
  sendOfferEmail(apaceRefundId: string): Promise<OfferEmailResult>;
  create(request: OfferRequest): Promise<OfferCreateResult>;
  cancel(offer: { readonly apaceRefundId?: string; readonly orderId: string; readonly itemIds: readonly string[] }): Promise<OfferCancelResult>;
  status(apaceRefundId: string): Promise<OfferStatusResult>;
}

/** Apace offers whose client is loaded by `load` on first use (a failed load is tried again next time). */
export function apaceOffersLoadedOnFirstUse(load: () => Promise<ApaceOffers>): ApaceOffers {
  const offers = loadOnce(load);
  return {
    sendOfferEmail: async (apaceRefundId) => (await offers()).sendOfferEmail(apaceRefundId),
    create: async (request) => (await offers()).create(request),
    cancel: async (offer) => (await offers()).cancel(offer),
    status: async (apaceRefundId) => (await offers()).status(apaceRefundId),
  };
}

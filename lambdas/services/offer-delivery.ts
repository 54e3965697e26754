import type { Money } from '../domain/money';

/**
 * How an Apace offer reaches the customer (docs/design.md §2.6), by stage (`APACE_OFFER_DELIVERY`):
 * Apace's Send Refund Offer Email, or an event carrying the link for the retailer's own messaging.
 */
export type OfferDelivery = { readonly mode: 'email' } | { readonly mode: 'event'; readonly events: OfferEventPublisher };

/** The event of a created offer: what the retailer's messaging needs to send the customer the link. */
export interface OfferEvent {
  /** Our refund id: the same on every publication of one offer, so a consumer can drop repeats. */
  readonly refundId: string;
  readonly orderId: string;
  /** The order number the customer knows (Apace's `order_id`). */
  readonly orderNumber: string;
  readonly apaceRefundId: string;
  readonly link: string;
  readonly amount: Money;
  readonly expiresAt: string;
  readonly customer?: { readonly email?: string; readonly firstName?: string; readonly lastName?: string };
}

export type PublishResult = { readonly kind: 'published' } | { readonly kind: 'failed'; readonly retryable: boolean; readonly reason: string };

/** Where offer events go: EventBridge in AWS, a log and a file under .local/ in the local runtime. */
export interface OfferEventPublisher {
  publish(event: OfferEvent): Promise<PublishResult>;
}

/** EventBridge `source` and `detail-type` of an offer event (README, "Delivering Apace offers"). */
export const OFFER_EVENT_SOURCE = 'refund-relay';
export const OFFER_EVENT_DETAIL_TYPE = 'ApaceOfferCreated';

import { randomBytes } from 'node:crypto';
import { asText, floatOrNull, optionalText } from './validation';

/** Apace's refund offers (its `Refund` rows) and the states they move through. */

export type Json = Record<string, unknown>;

export interface ApaceApiKey {
  readonly publicId: string;
  readonly apiSecret: string;
}

export type ApaceSimStatus = 'initialized' | 'viewed' | 'receiverVerified' | 'pending' | 'processed' | 'failed' | 'canceled' | 'refundByVendor';

export interface SimOfferView {
  readonly apaceRefundId: string;
  /** `order_id` as the customer sees it on the offer. */
  readonly orderId: string;
  readonly itemIds: readonly string[];
  readonly status: ApaceSimStatus;
  readonly merchantRefundId?: string;
  readonly orderUrl?: string;
  readonly redirectUrl?: string;
  readonly itemUrls: Readonly<Record<string, string>>;
  readonly customerEmail?: string;
  readonly emailSentAt?: string;
}

export const LIVE: ReadonlySet<ApaceSimStatus> = new Set(['initialized', 'viewed', 'receiverVerified']);
export const UNCANCELLABLE: ReadonlySet<ApaceSimStatus> = new Set(['pending', 'processed', 'failed']);
const ENDED: ReadonlySet<ApaceSimStatus> = new Set(['failed', 'processed', 'canceled']);
const CUSTOMER_LINK_BASE = 'https://customer.apacerefunds.com/refunds/process/en/create_refund';

export interface SimItem {
  readonly itemId: string;
  readonly displayName: string;
  readonly sku?: string;
  readonly itemUrl?: string;
  readonly itemImageUrl?: string;
  readonly returnDate?: string;
  readonly unitPrice: number | null;
  readonly returnQty: number | null;
}

export interface SimOffer {
  readonly id: string;
  readonly refundNumber: number;
  readonly apiKey: ApaceApiKey;
  readonly orderId: string;
  readonly productIds: readonly string[];
  readonly amount: number;
  readonly cardLastFour: string;
  readonly expirationDate: Date;
  readonly createdAt: Date;
  readonly customerEmail: string;
  readonly customerFName: string;
  readonly customerLName: string;
  readonly orderDate?: string;
  readonly orderUrl?: string;
  readonly redirectUrl?: string;
  readonly isPartialRefund: boolean;
  readonly refundLink: string;
  readonly items: readonly SimItem[];
  readonly verification: { readonly url: string; readonly method: string };
  readonly webhookUrl: string;
  readonly merchantRefundId?: string;
  status: ApaceSimStatus;
  lastUpdated: Date;
  refundDate: Date | null;
  emailSentAt: Date | null;
  refundDepositedAt: Date | null;
  cardLastFourVerified: boolean;
  card?: { readonly lastFour: string; readonly network: string };
  transactionId?: string;
}

export const isExpired = (offer: SimOffer, now: number) => offer.expirationDate.getTime() < now && !['processed', 'pending'].includes(offer.status);

/** Whether a live offer already covers one of `productIds` of `orderId` (Apace refuses a second one). */
export function hasLiveOffer(offers: Iterable<SimOffer>, orderId: string, productIds: readonly string[], now: number): boolean {
  return [...offers].some(
    (offer) =>
      offer.orderId === orderId &&
      offer.productIds.some((id) => productIds.includes(id)) &&
      offer.expirationDate.getTime() >= now &&
      !ENDED.has(offer.status) &&
      !isExpired(offer, now),
  );
}

/** What a create makes once validated and verified: an `initialized` offer. */
export interface NewOffer {
  readonly id: string;
  readonly refundNumber: number;
  readonly apiKey: ApaceApiKey;
  readonly vendorId: string;
  readonly body: Json;
  readonly orderId: string;
  readonly items: readonly SimItem[];
  readonly verification: { readonly url: string; readonly method: string };
  readonly webhookUrl: string;
  readonly merchantRefundId: string | undefined;
  readonly now: number;
}

/** The items of a validated create, as Apace stores them. */
export function itemsOf(body: Json): SimItem[] {
  return (body.items as Json[]).map((item): SimItem => ({
    itemId: String(item.item_id),
    displayName: String(item.display_name),
    ...(optionalText(item.sku) && { sku: optionalText(item.sku) }),
    ...(optionalText(item.item_url) && { itemUrl: optionalText(item.item_url) }),
    ...(optionalText(item.item_image_url) && { itemImageUrl: optionalText(item.item_image_url) }),
    ...(optionalText(item.return_date) && { returnDate: optionalText(item.return_date) }),
    unitPrice: floatOrNull(item.unit_price),
    returnQty: item.return_qty === undefined || item.return_qty === null ? null : Number.parseInt(asText(item.return_qty), 10),
  }));
}

export function newOffer({ id, refundNumber, apiKey, vendorId, body, orderId, items, verification, webhookUrl, merchantRefundId, now }: NewOffer): SimOffer {
  const notification = body.refund_notification as Json;
  const customer = (body.customer ?? {}) as Json;
  const createdAt = new Date(now);
  return {
    id,
    refundNumber,
    apiKey,
    orderId,
    productIds: items.map((item) => item.itemId),
    // Decimal(10,2) in Apace's database.
    amount: Math.round(Number.parseFloat(asText(body.refund_amount)) * 100) / 100,
    cardLastFour: asText(body.card_last_four),
    expirationDate: body.expiration_date === undefined ? new Date(now + 10 * 24 * 3600 * 1000) : new Date(body.expiration_date as string),
    createdAt,
    customerEmail: optionalText(customer.email) ?? '',
    customerFName: optionalText(customer.first_name) ?? '',
    customerLName: optionalText(customer.last_name) ?? '',
    ...(optionalText(body.order_date) && { orderDate: optionalText(body.order_date) }),
    ...(optionalText(body.order_url) && { orderUrl: optionalText(body.order_url) }),
    ...(optionalText(notification.redirect_url) && { redirectUrl: optionalText(notification.redirect_url) }),
    isPartialRefund: asText(body.is_partial_refund) === 'true',
    refundLink: `${CUSTOMER_LINK_BASE}/${randomBytes(24).toString('base64url')}?refund_id=${id}&vendor_id=${vendorId}`,
    items,
    verification,
    webhookUrl,
    ...(merchantRefundId && { merchantRefundId }),
    status: 'initialized',
    lastUpdated: createdAt,
    refundDate: null,
    emailSentAt: null,
    refundDepositedAt: null,
    cardLastFourVerified: false,
  };
}

export function listEntry(offer: SimOffer, now: number): Json {
  return {
    id: offer.id,
    refundNumber: offer.refundNumber,
    amount: offer.amount,
    status: offer.status,
    createdAt: offer.createdAt.toISOString(),
    expired: isExpired(offer, now),
    lastUpdated: offer.lastUpdated.toISOString(),
    isPartialRefund: offer.isPartialRefund,
    customer: null,
    customerEmail: offer.customerEmail,
    customerFName: offer.customerFName,
    customerLName: offer.customerLName,
    invoice: null,
  };
}

export function details(offer: SimOffer, now: number, vendorId: string): Json {
  return {
    ...listEntry(offer, now),
    orderUrl: offer.orderUrl ?? null,
    // Where Apace keeps `refund_notification.redirect_url` in its details is UNCONFIRMED (docs/providers.md §1).
    redirectUrl: offer.redirectUrl ?? null,
    vendorId,
    productIds: offer.productIds,
    orderId: offer.orderId,
    disabled: false,
    refundDate: offer.refundDate?.toISOString() ?? null,
    expirationDate: offer.expirationDate.toISOString(),
    refundLink: offer.refundLink,
    emailSentAt: offer.emailSentAt?.toISOString() ?? null,
    refundDepositedAt: offer.refundDepositedAt?.toISOString() ?? null,
    transaction: offer.transactionId ? { transactionId: offer.transactionId, status: offer.status } : null,
    refundItems: offer.items.map((item, index) => ({ id: index + 1, refundId: offer.id, ...item })),
    cardLastFour: offer.cardLastFour,
    cardLastFourVerified: offer.cardLastFourVerified,
    customerCard: offer.card ?? null,
  };
}

/** The offer as a test sees it (`ApaceSimulator.offers()`). */
export function offerView(offer: SimOffer): SimOfferView {
  return {
    apaceRefundId: offer.id,
    orderId: offer.orderId,
    itemIds: offer.productIds,
    status: offer.status,
    ...(offer.merchantRefundId && { merchantRefundId: offer.merchantRefundId }),
    ...(offer.orderUrl && { orderUrl: offer.orderUrl }),
    ...(offer.redirectUrl && { redirectUrl: offer.redirectUrl }),
    itemUrls: Object.fromEntries(offer.items.flatMap((item) => (item.itemUrl ? [[item.itemId, item.itemUrl]] : []))),
    ...(offer.customerEmail && { customerEmail: offer.customerEmail }),
    ...(offer.emailSentAt && { emailSentAt: offer.emailSentAt.toISOString() }),
  };
}

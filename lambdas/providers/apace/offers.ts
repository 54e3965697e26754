import type { ApaceOffers, OfferCancelResult, OfferCreateResult, OfferEmailResult, OfferRequest, OfferStatusResult } from '../../services/apace-offers';
import type { ApaceClient } from './client';

/** Apace's status of an offer, as the dispatcher needs it: has money moved, or failed to? */
function payoutOf(status: string): 'pending' | 'processed' | 'failed' | undefined {
  return status === 'pending' || status === 'processed' || status === 'failed' ? status : undefined;
}

/** The dispatcher's view of Apace (services/apace-offers.ts), implemented with the HTTP client. */
export class ApaceOffersAdapter implements ApaceOffers {
  constructor(private readonly client: ApaceClient) {}

  async create(request: OfferRequest): Promise<OfferCreateResult> {
    const result = await this.client.createOffer({
      orderId: request.orderId,
      cardLastFour: request.cardLastFour,
      amount: request.amount,
      items: request.items.map((item) => ({
        itemId: item.itemId,
        displayName: item.displayName,
        ...(item.sku && { sku: item.sku }),
        ...(item.unitPrice && { unitPrice: item.unitPrice }),
        returnQty: item.quantity,
        ...(item.url && { itemUrl: item.url }),
      })),
      expiresAt: request.expiresAt,
      ...(request.customer && { customer: request.customer }),
      verificationUrl: request.verificationUrl,
      notificationUrl: request.notificationUrl,
      ...(request.orderUrl && { orderUrl: request.orderUrl }),
      ...(request.redirectUrl && { redirectUrl: request.redirectUrl }),
      ...(request.createdSince && { createdSince: request.createdSince }),
    });
    if (result.kind !== 'created') return { kind: 'failed', retryable: result.retryable, reason: result.reason };
    return { kind: 'created', apaceRefundId: result.apaceRefundId, link: result.link ?? '', activeUntil: result.activeUntil, recovered: result.recovered };
  }

  async cancel(offer: { apaceRefundId?: string; orderId: string; itemIds: readonly string[] }): Promise<OfferCancelResult> {
    let apaceRefundId = offer.apaceRefundId;
    if (!apaceRefundId) {
      // The create answer was lost: cancel whatever live offer Apace holds for these items.
      const found = await this.client.findLiveOffer(offer.orderId, offer.itemIds);
      if (found.kind === 'none') return { kind: 'not_found' };
      if (found.kind !== 'found') return { kind: 'failed', retryable: found.retryable, reason: found.reason };
      apaceRefundId = found.offer.apaceRefundId;
    }
    const result = await this.client.cancel(apaceRefundId);
    switch (result.kind) {
      case 'cancelled':
      case 'not_found':
        return result;
      case 'refused':
        return { kind: 'refused', payout: payoutOf(result.apaceStatus) ?? 'unknown', reason: `Apace status ${result.apaceStatus}` };
      default:
        return { kind: 'failed', retryable: result.retryable, reason: result.reason };
    }
  }

  async sendOfferEmail(apaceRefundId: string): Promise<OfferEmailResult> {
    const result = await this.client.sendOfferEmail(apaceRefundId);
    return result.kind === 'sent' ? result : { kind: 'failed', retryable: result.retryable, reason: result.reason };
  }

  async status(apaceRefundId: string): Promise<OfferStatusResult> {
    const result = await this.client.get(apaceRefundId);
    if (result.kind === 'not_found') return result;
    if (result.kind !== 'found') return { kind: 'failed', retryable: result.retryable, reason: result.reason };
    return { kind: 'found', payout: payoutOf(result.offer.status) ?? 'none' };
  }
}

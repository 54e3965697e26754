import { randomBytes } from 'node:crypto';
import { isExpired, LIVE, type SimOffer } from './offers';
import type { MerchantCalls, WebhookDelivery } from './webhooks';

/**
 * The customer's side of an offer and the payout it starts: the claim (card check, the merchant's
 * verification right before paying), `pending` → `processed` or `failed`, the webhook of each,
 * and the payout counts tests read.
 */

export type CustomerOutcome =
  /** Verification allowed it: Apace paid the customer. */
  | 'paid'
  | 'card_mismatch'
  /** The merchant's verification did not answer `allow_refund` truthy. */
  | 'declined'
  /** The merchant answered `refund_issued: true`: the offer is closed as refunded by the vendor. */
  | 'refunded_by_vendor'
  /** No such offer, expired, canceled or already paid. */
  | 'unavailable';

export interface PayoutSettings {
  readonly processedDelayMs: number;
  readonly payoutDelayMs?: number;
  readonly honoursLateCancel?: boolean;
}

export interface Payouts {
  readonly customerAccepts: (apaceRefundId: string, cardLastFour: string) => Promise<CustomerOutcome>;
  readonly payoutProcessed: (apaceRefundId: string) => Promise<boolean>;
  readonly payoutFails: (apaceRefundId: string) => Promise<boolean>;
  readonly redeliver: (apaceRefundId: string, event: WebhookDelivery['event']) => Promise<void>;
  /** Payouts per merchant refund id (the offer id when the callback URLs name none). */
  readonly byMerchantRef: ReadonlyMap<string, number>;
  readonly byOffer: ReadonlyMap<string, number>;
}

export function createPayouts(offers: ReadonlyMap<string, SimOffer>, merchant: MerchantCalls, options: PayoutSettings): Payouts {
  const { askVerification, deliverWebhook, later } = merchant;
  const payoutsByMerchantRef = new Map<string, number>();
  const payoutsByOffer = new Map<string, number>();

  function recordPayout(offer: SimOffer): void {
    const key = offer.merchantRefundId ?? offer.id;
    payoutsByMerchantRef.set(key, (payoutsByMerchantRef.get(key) ?? 0) + 1);
    payoutsByOffer.set(offer.id, (payoutsByOffer.get(offer.id) ?? 0) + 1);
  }

  async function customerAccepts(apaceRefundId: string, cardLastFour: string): Promise<CustomerOutcome> {
    const offer = offers.get(apaceRefundId);
    if (!offer || !LIVE.has(offer.status) || isExpired(offer, Date.now())) return 'unavailable';
    if (offer.status === 'initialized') offer.status = 'viewed';
    if (cardLastFour !== offer.cardLastFour) return 'card_mismatch';
    offer.cardLastFourVerified = true;
    if (offer.status === 'viewed') offer.status = 'receiverVerified';

    // Apace asks the merchant right before paying (refund.service.js `isRefundEnabledByVendor`).
    const answer = await askVerification('payout', offer.verification.url, offer.verification.method);
    if (!answer?.allow_refund) {
      if (answer?.refund_issued) {
        offer.status = 'refundByVendor';
        offer.lastUpdated = new Date();
        return 'refunded_by_vendor';
      }
      return 'declined';
    }
    if (options.payoutDelayMs) await new Promise((resolve) => setTimeout(resolve, options.payoutDelayMs));
    // The status moves receiverVerified → pending only once, so a concurrent claim cannot pay twice.
    // The pessimistic Apace finishes a payout it approved, whatever happened to the offer since.
    const pessimistic = options.honoursLateCancel === false;
    const payable = pessimistic
      ? offer.status === 'receiverVerified' || offer.status === 'canceled'
      : offer.status === 'receiverVerified' && !isExpired(offer, Date.now());
    if (!payable) return 'unavailable';
    const now = new Date();
    offer.status = 'pending';
    offer.refundDate = now;
    offer.lastUpdated = now;
    offer.card = { lastFour: cardLastFour, network: 'VISA' };
    offer.transactionId = randomBytes(8).toString('hex');
    recordPayout(offer);
    void deliverWebhook(offer, 'pending', 1);
    later(options.processedDelayMs, async () => {
      await payoutProcessed(offer.id);
    });
    return 'paid';
  }

  /** The payout under way reaches the customer now (otherwise `processedDelayMs` after it started). */
  async function payoutProcessed(apaceRefundId: string): Promise<boolean> {
    const offer = offers.get(apaceRefundId);
    if (offer?.status !== 'pending') return false;
    offer.status = 'processed';
    offer.refundDepositedAt = new Date();
    offer.lastUpdated = offer.refundDepositedAt;
    await deliverWebhook(offer, 'processed', 1);
    return true;
  }

  /** The card network declines the payout under way: the offer fails for good and the `failed` webhook goes out. */
  async function payoutFails(apaceRefundId: string): Promise<boolean> {
    const offer = offers.get(apaceRefundId);
    if (offer?.status !== 'pending') return false;
    offer.status = 'failed';
    offer.lastUpdated = new Date();
    await deliverWebhook(offer, 'failed', 1);
    return true;
  }

  /** Apace retries an event it believes undelivered (≥ 30 min later), with the body it first built. */
  async function redeliver(apaceRefundId: string, event: WebhookDelivery['event']): Promise<void> {
    const offer = offers.get(apaceRefundId);
    if (offer) await deliverWebhook(offer, event, 2, event);
  }

  return { customerAccepts, payoutProcessed, payoutFails, redeliver, byMerchantRef: payoutsByMerchantRef, byOffer: payoutsByOffer };
}

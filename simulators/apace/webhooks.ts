import { APACE_SIGNATURE_HEADER, signApaceBody } from '../../lambdas/providers/apace/signature';
import type { ApaceSimStatus, Json, SimOffer } from './offers';

/**
 * Apace's calls to the merchant: the verification URL asked at create and before paying, and the
 * signed webhooks with Apace's retry limit (consumers/refundWebhook.js). Each call is bounded by
 * `callbackTimeoutMs` and aborted on `close()`.
 */

export interface VerificationCall {
  readonly phase: 'create' | 'payout';
  readonly merchantRefundId?: string;
  readonly answer?: unknown;
  readonly error?: string;
}

export interface WebhookDelivery {
  readonly apaceRefundId: string;
  readonly event: 'pending' | 'processed' | 'failed';
  readonly trial: number;
  readonly status?: number;
  readonly error?: string;
}

/** Apace's constant (utils/Constants.js): a webhook event is tried at most this often. */
export const MAXIMUM_TRIALS = 4;
const MERCHANT_LINK_BASE = 'https://merchant.apacerefunds.com/app/refund';

/** Our refund id from a callback URL shaped `…/refunds/{refundId}/…`, the key of the payout counts. */
export function merchantRefundIdOf(...urls: string[]): string | undefined {
  for (const url of urls) {
    try {
      const match = /\/refunds\/([^/]+)\//.exec(new URL(url).pathname);
      if (match?.[1]) return decodeURIComponent(match[1]);
    } catch {
      continue;
    }
  }
  return undefined;
}

export interface MerchantCallSettings {
  readonly callbackTimeoutMs: number;
  readonly webhookRetryGapMs: number;
}

export interface MerchantCalls {
  readonly askVerification: (phase: VerificationCall['phase'], url: string, method: string) => Promise<Json | undefined>;
  readonly deliverWebhook: (offer: SimOffer, event: WebhookDelivery['event'], trial: number, asStatus?: ApaceSimStatus) => Promise<void>;
  /** Runs `run` after `ms` unless closed first. */
  readonly later: (ms: number, run: () => Promise<void>) => void;
  readonly verifications: readonly VerificationCall[];
  readonly deliveries: readonly WebhookDelivery[];
  readonly close: () => void;
}

export function createMerchantCalls({ callbackTimeoutMs, webhookRetryGapMs }: MerchantCallSettings): MerchantCalls {
  const verifications: VerificationCall[] = [];
  const deliveries: WebhookDelivery[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<AbortController>();
  let closed = false;

  const later = (ms: number, run: () => Promise<void>) => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      void run();
    }, ms);
    timer.unref();
    timers.add(timer);
  };

  async function callMerchant(url: string, init: RequestInit): Promise<Response> {
    const controller = new AbortController();
    inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(), callbackTimeoutMs);
    try {
      return await fetch(url, { ...init, signal: controller.signal });
    } finally {
      clearTimeout(timer);
      inFlight.delete(controller);
    }
  }

  /** A bare request without body or auth headers, as Apace's `axios[method](url)`; undefined when it fails. */
  async function askVerification(phase: VerificationCall['phase'], url: string, method: string): Promise<Json | undefined> {
    const merchantRefundId = merchantRefundIdOf(url);
    try {
      const response = await callMerchant(url, { method: method.toUpperCase() });
      const text = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      let answer: unknown = text;
      try {
        answer = JSON.parse(text);
      } catch {
        // axios keeps a non-JSON body as a string, which has no `allow_refund` key.
      }
      verifications.push({ phase, ...(merchantRefundId && { merchantRefundId }), answer });
      return answer !== null && typeof answer === 'object' ? (answer as Json) : {};
    } catch (error) {
      verifications.push({ phase, ...(merchantRefundId && { merchantRefundId }), error: (error as Error).message });
      return undefined;
    }
  }

  function webhookBody(offer: SimOffer, asStatus: ApaceSimStatus = offer.status): Json {
    // Built when sent, from the offer as it is then (consumers/refundWebhook.js); a replayed event
    // carries the status it was first built with.
    return {
      refund_success: asStatus === 'processed',
      refund_status: asStatus,
      refund_id: offer.id,
      date_created: offer.createdAt.toISOString(),
      datetime_refund_sent: offer.refundDepositedAt?.toISOString() ?? null,
      apace_refund_link: `${MERCHANT_LINK_BASE}/${offer.id}`,
      order_id: offer.orderId,
      item_ids: offer.productIds,
      refund_card: `**** **** ***** ${offer.card?.lastFour ?? ''}`,
      network: offer.card?.network ?? null,
      network_transaction_id: offer.transactionId ?? null,
    };
  }

  async function deliverWebhook(offer: SimOffer, event: WebhookDelivery['event'], trial: number, asStatus?: ApaceSimStatus): Promise<void> {
    if (closed) return;
    const body = JSON.stringify(webhookBody(offer, asStatus));
    let delivered = false;
    try {
      const response = await callMerchant(offer.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signApaceBody(offer.apiKey.apiSecret, body) },
        body,
      });
      await response.arrayBuffer();
      delivered = response.status < 300;
      deliveries.push({ apaceRefundId: offer.id, event, trial, status: response.status });
    } catch (error) {
      deliveries.push({ apaceRefundId: offer.id, event, trial, error: (error as Error).message });
    }
    if (!delivered && trial < MAXIMUM_TRIALS) later(webhookRetryGapMs, () => deliverWebhook(offer, event, trial + 1, asStatus));
  }

  return {
    askVerification,
    deliverWebhook,
    later,
    verifications,
    deliveries,
    close: () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const controller of inFlight) controller.abort();
    },
  };
}

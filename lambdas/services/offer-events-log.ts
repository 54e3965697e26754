import { appendFile } from 'node:fs/promises';
import { logger } from '../commons/logger';
import type { OfferEvent, OfferEventPublisher, PublishResult } from './offer-delivery';

const published: OfferEvent[] = [];

/** Every offer event this process published through a `LoggedOfferEvents` (tests and the local runtime read it). */
export function publishedOfferEvents(): readonly OfferEvent[] {
  return published;
}

/**
 * The offer-event publisher where there is no EventBridge (the local runtime, tests): it logs the
 * event, keeps it in memory and, when given a file (`LOCAL_OFFER_EVENTS_FILE`, .local/offer-events.jsonl
 * under `npm start`), appends it there as one JSON line, so the link can be read and opened by hand.
 */
export class LoggedOfferEvents implements OfferEventPublisher {
  constructor(private readonly file?: string) {}

  async publish(event: OfferEvent): Promise<PublishResult> {
    logger.info('Apace offer event', { order_id: event.orderId, refund_id: event.refundId, apace_refund_id: event.apaceRefundId });
    if (this.file) {
      try {
        await appendFile(this.file, `${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`);
      } catch (error) {
        return { kind: 'failed', retryable: true, reason: `cannot write ${this.file}: ${(error as Error).message}` };
      }
    }
    published.push(event);
    return { kind: 'published' };
  }
}

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { OFFER_EVENT_DETAIL_TYPE, OFFER_EVENT_SOURCE, type OfferEvent, type OfferEventPublisher, type PublishResult } from './offer-delivery';

/** How long one PutEvents may take (the dispatcher's time budget counts it as the `events` channel). */
export const EVENTBRIDGE_TIMEOUT_MS = 5_000;

/** EventBridge's codes for an entry it could not take now (PutEvents answers per entry). */
const RETRYABLE_ENTRY_ERRORS = new Set(['ThrottlingException', 'InternalFailure', 'InternalException', 'ServiceUnavailable']);

/**
 * Offer events to the stage's EventBridge bus (`APACE_OFFER_EVENT_BUS`, event delivery in AWS).
 * The SDK client is made on the first event (only the dispatcher's bundle holds it). PutEvents has no idempotency key: a retry after a lost answer may publish twice,
 * so consumers drop repeats by `detail.refundId` (docs/design.md §2.6).
 */
export class EventBridgeOfferEvents implements OfferEventPublisher {
  private client?: EventBridgeClient;

  constructor(
    private readonly busName: string,
    private readonly timeoutMs = EVENTBRIDGE_TIMEOUT_MS,
  ) {}

  async publish(event: OfferEvent): Promise<PublishResult> {
    this.client ??= new EventBridgeClient({ maxAttempts: 2 });
    try {
      const answer = await this.client.send(
        new PutEventsCommand({
          Entries: [{ EventBusName: this.busName, Source: OFFER_EVENT_SOURCE, DetailType: OFFER_EVENT_DETAIL_TYPE, Detail: JSON.stringify(event) }],
        }),
        { abortSignal: AbortSignal.timeout(this.timeoutMs) },
      );
      const entry = answer.Entries?.[0];
      if (!answer.FailedEntryCount && entry?.EventId) return { kind: 'published' };
      const code = entry?.ErrorCode ?? 'no event id';
      return {
        kind: 'failed',
        retryable: RETRYABLE_ENTRY_ERRORS.has(code),
        reason: `EventBridge refused the offer event: ${code} ${entry?.ErrorMessage ?? ''}`.trim(),
      };
    } catch (error) {
      // Unreachable, throttled as a whole, or our rights are wrong: the attempt budget decides when to stop.
      return { kind: 'failed', retryable: true, reason: `EventBridge PutEvents failed: ${(error as Error).name}: ${(error as Error).message}` };
    }
  }
}

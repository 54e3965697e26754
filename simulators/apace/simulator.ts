import type { Simulator } from '../kit';
import { offerView, type ApaceApiKey, type SimOffer, type SimOfferView } from './offers';
import { createPayouts, type CustomerOutcome } from './payouts';
import { createRoutes, type EmailFailure, type EmailRequest } from './routes';
import { createMerchantCalls, type VerificationCall, type WebhookDelivery } from './webhooks';

export type { ApaceApiKey, ApaceSimStatus, SimOfferView } from './offers';
export type { CustomerOutcome } from './payouts';
export type { EmailFailure, EmailRequest } from './routes';
export { MAXIMUM_TRIALS } from './webhooks';
export type { VerificationCall, WebhookDelivery } from './webhooks';

/**
 * Apace's External module as its public source code behaves (docs/providers.md §1; repo
 * yitzforwardslash/apace-payments-server), for local runs and tests only. It authenticates the
 * key pair with the per-IP lockout, validates a create the way express-validator does (every
 * failure at once, nulls validated), calls the merchant's verification URL during the create and
 * again before paying, refuses a second live offer per order item, and delivers signed webhooks
 * with Apace's retry limit. `customerAccepts` plays the customer who opens the link and claims.
 * The parts: offers.ts (the offers and their states), validation.ts (the create's checks),
 * routes.ts (the External API), webhooks.ts (calls to the merchant), payouts.ts (the customer's
 * claim and the payout).
 */
export interface ApaceSimulatorOptions {
  /** The vendor's API key pairs (the portal allows several); webhooks are signed with the creating key's secret. */
  readonly apiKeys: readonly ApaceApiKey[];
  readonly vendorId?: string;
  /** How long an IP is refused (429) after 3 failed auths. Apace: 5 minutes. */
  readonly lockoutMs?: number;
  /** From the `pending` payout to `processed`. Apace docs: about 20 s. */
  readonly processedDelayMs?: number;
  /** Gap before a failed webhook is tried again. Apace: at least 30 minutes. */
  readonly webhookRetryGapMs?: number;
  /** Bound on each call to the merchant (Apace's axios calls have none; a simulator must end). */
  readonly callbackTimeoutMs?: number;
  /**
   * Apace's processing time between our `allow_refund: true` and the payout (default 0), and whether
   * a cancel that lands in that gap still stops the payout (default true). Whether the real Apace
   * re-checks after verifying is UNCONFIRMED; `honoursLateCancel: false` is the pessimistic case
   * the claim-window guard exists for.
   */
  readonly payoutDelayMs?: number;
  readonly honoursLateCancel?: boolean;
}

export interface ApaceSimulator extends Simulator {
  customerAccepts(apaceRefundId: string, cardLastFour: string): Promise<CustomerOutcome>;
  /** The payout under way completes now; false when the offer has none under way. */
  payoutProcessed(apaceRefundId: string): Promise<boolean>;
  /** The payout under way fails; false when the offer has none under way. */
  payoutFails(apaceRefundId: string): Promise<boolean>;
  /** Delivers `event` again as Apace's retry would, with `refund_status` as first sent. */
  redeliver(apaceRefundId: string, event: WebhookDelivery['event']): Promise<void>;
  /** Payouts per Apace offer id (`payouts()` counts per merchant refund id). */
  payoutsByOffer(): ReadonlyMap<string, number>;
  offers(): readonly SimOfferView[];
  verificationCalls(): readonly VerificationCall[];
  webhookDeliveries(): readonly WebhookDelivery[];
  /** Every Send Refund Offer Email request, in order: Apace e-mails the customer on each one it answers 200. */
  emailRequests(): readonly EmailRequest[];
  /** The next `count` e-mail requests fail as `failure` (a test's knob; Infinity for every one). */
  failEmails(count: number, failure?: EmailFailure, lostAnswerMs?: number): void;
  /** Clears pending webhook and payout timers and aborts calls in flight. */
  close(): void;
}

export function createApaceSimulator(options: ApaceSimulatorOptions): ApaceSimulator {
  const offers = new Map<string, SimOffer>();
  const merchant = createMerchantCalls({
    callbackTimeoutMs: options.callbackTimeoutMs ?? 10_000,
    webhookRetryGapMs: options.webhookRetryGapMs ?? 30 * 60 * 1000,
  });
  const payouts = createPayouts(offers, merchant, {
    processedDelayMs: options.processedDelayMs ?? 20_000,
    ...(options.payoutDelayMs !== undefined && { payoutDelayMs: options.payoutDelayMs }),
    ...(options.honoursLateCancel !== undefined && { honoursLateCancel: options.honoursLateCancel }),
  });
  const routes = createRoutes(offers, merchant, payouts.customerAccepts, {
    apiKeys: options.apiKeys,
    vendorId: options.vendorId ?? '17',
    lockoutMs: options.lockoutMs ?? 5 * 60 * 1000,
  });

  return {
    name: 'apace',
    handle: routes.handle,
    payouts: () => payouts.byMerchantRef,
    payoutsByOffer: () => payouts.byOffer,
    customerAccepts: payouts.customerAccepts,
    payoutFails: payouts.payoutFails,
    payoutProcessed: payouts.payoutProcessed,
    redeliver: payouts.redeliver,
    offers: () => [...offers.values()].map(offerView),
    verificationCalls: () => merchant.verifications,
    webhookDeliveries: () => merchant.deliveries,
    emailRequests: () => routes.emails,
    failEmails: (count, failure = 'unavailable', lostAnswerMs = 2_000) => routes.failEmails(count, failure, lostAnswerMs),
    close: merchant.close,
  };
}

import { remainingMs } from '../commons/deadline';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { own, type Order, type PaymentProvider } from '../domain/order';
import { fallbackWaitsForReceipt, type ReceiptRules } from '../domain/receipt';
import {
  RECEIPT_OVERDUE_REASON,
  REFUNDID_OVERDUE_REASON,
  REFUNDID_REMINDER_MS,
  offerDeliveryOwed,
  planTransition,
  refundDueAt,
  settledElsewhere,
  type Refund,
  type RefundEvent,
  type TransitionContext,
} from '../domain/refund';
import type { CallbackUrls } from '../providers/apace/callback-token';
import { fillTemplate, type OfferLinkTemplates } from '../providers/apace/offer-links';
import { reversalRequest, type ReversalConnector, type ReversalOutcome } from '../providers/reversal';
import type { Actor, OrderStore, Schedule, TransitionOutcome } from '../store/order-store';
import { apaceOrderId, type ApaceOffers, type OfferItem } from './apace-offers';
import type { OfferDelivery, PublishResult } from './offer-delivery';
import { reportApacePaidTwice, reportPaidTwice } from './paid-twice';
import { backoffDelayMs, later, type RetryPolicy } from './retry-policy';

/** The order as one dispatcher run read it and changed it since: its version and refunds. */
interface Tracked {
  version: number;
  readonly refunds: Record<string, Refund>;
  /** Every write so far set the due time at the version it expected. */
  folding: boolean;
  scheduled: boolean;
}

/** When the order next needs the dispatcher: its refunds' earliest due time (undefined: never). */
function earliestDue(refunds: Readonly<Record<string, Refund>>): string | undefined {
  return Object.values(refunds)
    .map(refundDueAt)
    .filter((at): at is string => at !== undefined)
    .sort()[0];
}

export interface DispatcherDeps {
  readonly store: OrderStore;
  /** Absent when the stage routes nothing through Apace. */
  readonly apace?: ApaceOffers;
  readonly reversals: Partial<Record<PaymentProvider, ReversalConnector>>;
  readonly policy: RetryPolicy;
  readonly claimWindowMs: number;
  /** The currency of the stage's Apace vendor account (`APACE_CURRENCY`); Apace pays in nothing else. AUD when absent. */
  readonly apaceCurrency?: string;
  /** `APACE_PROCESSED_WITHIN_SECONDS` in ms: when a refund paid at Apace's `pending` is first followed up. */
  readonly apaceProcessedWithinMs?: number;
  readonly callbackUrls: (orderId: string, refundId: string, offerExpiresAt: string) => Promise<CallbackUrls>;
  /**
   * How a created offer reaches the customer (`APACE_OFFER_DELIVERY`, docs/design.md §2.6). Absent:
   * offers are not delivered by refund-relay (only code that builds a Dispatcher by hand omits it).
   */
  readonly offerDelivery?: OfferDelivery;
  /** The stage's templates of the links an offer shows the customer (`APACE_*_URL_TEMPLATE`); none when absent. */
  readonly offerLinks?: OfferLinkTemplates;
  /**
   * How long one provider operation of each channel may take (its configured timeout; Optty's
   * includes a token request). With it, a provider call starts only when the invocation's
   * deadline (commons/deadline.ts) leaves more than that plus `marginMs`; a refund whose call does
   * not fit is handed back untouched for the next invocation (docs/design.md §2.5).
   */
  readonly callBudget?: CallBudget;
  /**
   * The stage's receipt rules (`AP21_PAY_ON_RECEIPT`, `AP21_RECEIPT_WAIT_DAYS`, docs/design.md §2.9):
   * a refund that leaves Apace for a card reversal the stage holds until receipt waits for it.
   * Absent: every card reversal is sent at once.
   */
  readonly receipt?: Pick<ReceiptRules, 'payOnReceipt' | 'waitMs'>;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly actor?: Actor;
}

/** A provider's calls, or `events`: publishing an offer event (docs/design.md §2.6). */
export type CallChannel = 'apace' | PaymentProvider | 'events';

export interface CallBudget {
  readonly timeoutMs: Readonly<Partial<Record<CallChannel, number>>>;
  /** Time to record a call's outcome (a claim and one or two conditional writes) after it returns. */
  readonly marginMs: number;
}

export interface DispatchStep {
  readonly refundId: string;
  readonly action: string;
  /** Not started: the invocation had too little time left for its provider call. */
  readonly handedBack?: true;
}

/** A provider call that would not fit in the invocation's remaining time: nothing was claimed. */
class NoTimeForCall extends Error {
  override readonly name = 'NoTimeForCall';
}

/**
 * Does the outbound work the outbox says is due for one order (docs/design.md §2.4): create, deliver
 * (§2.6) or cancel Apace offers, submit and follow up card reversals. The same code runs as the SQS consumer in AWS and
 * in the local runtime's loop. Every provider call is preceded by a claim — a conditional write
 * that counts the attempt and takes a lease — so two dispatchers never make the same call at once,
 * and a crash mid-call leaves a lease the sweeper takes over when it runs out.
 */
export class Dispatcher {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly actor: Actor;
  /** What each run knows of the order it works on (keyed by the order object the run read). */
  private readonly tracked = new WeakMap<Order, Tracked>();

  constructor(private readonly deps: DispatcherDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.actor = deps.actor ?? 'dispatcher';
  }

  async processOrder(orderId: string): Promise<DispatchStep[]> {
    const order = await this.deps.store.getOrder(orderId);
    if (!order) return [];
    const tracked: Tracked = { version: order.version, refunds: { ...order.refunds }, folding: true, scheduled: false };
    this.tracked.set(order, tracked);
    const steps: DispatchStep[] = [];
    const now = new Date(this.now()).toISOString();
    for (const refund of Object.values(order.refunds)) {
      const due = refundDueAt(refund);
      if (due === undefined || due > now) continue;
      try {
        steps.push({ refundId: refund.id, action: await this.work(order, refund) });
      } catch (error) {
        if (error instanceof NoTimeForCall) {
          steps.push({ refundId: refund.id, action: `handed back: ${error.message}`, handedBack: true });
          continue;
        }
        // One refund's infrastructure failure must not starve the order's other refunds.
        logger.error('dispatch failed', { order_id: orderId, refund_id: refund.id, error });
        steps.push({ refundId: refund.id, action: 'error' });
      }
    }
    // Each write already set the order's due time, against the version it was computed from.
    if (!(tracked.folding && tracked.scheduled)) await this.reschedule(orderId);
    if (steps.some((step) => step.action === 'error')) throw new Error(`dispatch of order ${orderId} hit errors; it will be retried`);
    return steps;
  }

  private work(order: Order, refund: Refund): Promise<string> {
    switch (refund.state) {
      case 'offer_pending':
        return this.createOffer(order, refund);
      case 'offer_cancelling':
        return this.cancelOffer(order, refund);
      case 'offered':
        return offerDeliveryOwed(refund) ? this.deliverOffer(order, refund) : this.followUpOffer(order, refund);
      case 'reversal_pending':
        return this.submitReversal(order, refund);
      case 'reversal_submitted':
        return this.followUpReversal(order, refund);
      case 'paid':
        return this.followUpPayout(order, refund);
      case 'awaiting_receipt':
        return this.receiptOverdue(order, refund);
      case 'refundid_pending':
        return this.refundidOverdue(order, refund);
      default:
        return Promise.resolve('nothing to do');
    }
  }

  private async createOffer(order: Order, refund: Refund): Promise<string> {
    const { apace, policy } = this.deps;
    const payment = own(order.payments, refund.paymentId);
    const currency = this.deps.apaceCurrency ?? 'AUD';
    // `refund_amount` is a bare decimal in the vendor account's currency (docs/providers.md §1).
    if (refund.amount.currency !== currency)
      return this.skipApace(order, refund, `Apace pays only in ${currency}; this refund is in ${refund.amount.currency}`);
    if (!apace) return this.leaveApace(order, refund, 'Apace is not configured for this stage');
    if (!payment?.cardLastFour) return this.leaveApace(order, refund, 'the card’s last four digits are unknown');
    if (!refund.offerExpiresAt || refund.offerExpiresAt <= this.iso()) return this.leaveApace(order, refund, 'the offer expired before Apace accepted it');
    if (refund.attempts >= policy.maxAttempts) return this.leaveApace(order, refund, `Apace unavailable after ${refund.attempts} attempts`);
    // An offer the customer cannot hear of would only expire unseen (docs/design.md §2.6).
    if (this.deps.offerDelivery?.mode === 'email' && !order.customer?.email)
      return this.skipApace(order, refund, 'the customer’s e-mail is unknown, so Apace cannot e-mail them the offer');
    const claim = await this.claim(order, refund, 'attempt_started', 'apace');
    if (!claim.applied) return `not claimed (${claim.why})`;
    const urls = await this.deps.callbackUrls(order.orderId, refund.id, refund.offerExpiresAt);
    const links = this.deps.offerLinks ?? {};
    const orderNumber = apaceOrderId(order);
    const orderUrl = links.orderUrl && fillTemplate(links.orderUrl, { orderNumber });
    const redirectUrl = links.redirectUrl && fillTemplate(links.redirectUrl, { orderNumber });
    const result = await apace.create({
      orderId: orderNumber,
      refundId: refund.id,
      cardLastFour: payment.cardLastFour,
      amount: refund.amount,
      items: offerItems(order, refund, links.itemUrl),
      expiresAt: refund.offerExpiresAt,
      ...(order.customer && { customer: order.customer }),
      verificationUrl: urls.verificationUrl,
      notificationUrl: urls.notificationUrl,
      ...(orderUrl && { orderUrl }),
      ...(redirectUrl && { redirectUrl }),
      createdSince: refund.createdAt,
    });
    if (result.kind === 'created') {
      const delivery = this.deps.offerDelivery;
      const created = await this.apply(
        order,
        claim.refund,
        'offer_created',
        {
          refs: { apaceRefundId: result.apaceRefundId, apaceLink: result.link, ...(delivery && { offerDelivery: 'pending' }) },
          ...(delivery && { nextAttemptAt: this.iso() }),
        },
        result.recovered ? 'found the offer Apace had already created' : undefined,
      );
      const done = result.recovered ? 'offer recovered' : 'offer created';
      if (!created.applied || !delivery) return done;
      return `${done}; ${await this.deliverOffer(order, created.refund)}`;
    }
    if (result.retryable) return this.retryLater(order, claim.refund, result.reason);
    return this.leaveApace(order, claim.refund, `Apace refused the offer: ${result.reason}`);
  }

  /**
   * Tells the customer of the offer, once as far as refund-relay can tell (docs/design.md §2.6):
   * the intent is recorded with the claim before the call, and a recorded delivery is never
   * repeated. A failure is retried with backoff; one that cannot succeed, an exhausted budget or an
   * offer expired meanwhile sends the refund to card reversal (cancel first), not to an unseen expiry.
   */
  private async deliverOffer(order: Order, refund: Refund): Promise<string> {
    const delivery = this.deps.offerDelivery;
    const { apaceRefundId, apaceLink } = refund.refs;
    if (!delivery) return 'nothing to do';
    if (!refund.offerExpiresAt || refund.offerExpiresAt <= this.iso())
      return this.undeliverable(order, refund, 'the offer expired before it reached the customer');
    if (refund.attempts >= this.deps.policy.maxAttempts)
      return this.undeliverable(order, refund, `the offer could not reach the customer after ${refund.attempts} attempts`);
    if (!apaceRefundId) return this.undeliverable(order, refund, 'no Apace refund id to deliver the offer by');
    if (delivery.mode === 'email' && !this.deps.apace) return this.undeliverable(order, refund, 'Apace is not configured to e-mail the offer');
    if (delivery.mode === 'event' && !apaceLink) return this.undeliverable(order, refund, 'Apace gave no link to send the customer');
    // `sending` left by an earlier attempt: its answer was lost or its dispatcher crashed (see §2.6 for why we send again).
    const unknown = refund.refs.offerDelivery === 'sending' ? 'the previous attempt’s outcome is unknown; ' : '';
    this.ensureTime(delivery.mode === 'email' ? 'apace' : 'events');
    const claim = await this.apply(
      order,
      refund,
      'offer_delivery_started',
      { refs: { offerDelivery: 'sending' }, nextAttemptAt: later(this.now(), this.deps.policy.leaseMs) },
      `${unknown}${delivery.mode === 'email' ? 'asking Apace to e-mail the offer' : 'publishing the offer event'}`,
    );
    if (!claim.applied) return `not claimed (${claim.why})`;
    const outcome: PublishResult =
      delivery.mode === 'email'
        ? await this.emailOffer(apaceRefundId)
        : await delivery.events.publish({
            refundId: refund.id,
            orderId: order.orderId,
            orderNumber: apaceOrderId(order),
            apaceRefundId,
            link: apaceLink ?? '',
            amount: refund.amount,
            expiresAt: refund.offerExpiresAt,
            ...(order.customer && { customer: order.customer }),
          });
    if (outcome.kind === 'published') {
      const done = await this.apply(
        order,
        claim.refund,
        'offer_delivered',
        { refs: { offerDelivery: 'delivered', offerDeliveredBy: delivery.mode, offerDeliveredAt: this.iso() } },
        delivery.mode === 'email' ? 'Apace e-mailed the offer to the customer' : 'offer event published',
      );
      return done.applied ? `offer delivered by ${delivery.mode}` : `delivered, not recorded (${done.why})`;
    }
    if (!outcome.retryable) return this.undeliverable(order, claim.refund, `the offer cannot reach the customer: ${outcome.reason}`);
    const delay = backoffDelayMs(Math.max(1, claim.refund.attempts), this.deps.policy, this.random);
    await this.apply(
      order,
      claim.refund,
      'rescheduled',
      { refs: { offerDelivery: 'pending' }, nextAttemptAt: later(this.now(), delay) },
      `offer delivery failed: ${outcome.reason}`,
    );
    return `delivery retry in ${Math.round(delay / 1000)} s: ${outcome.reason}`;
  }

  /** The offer cannot reach its customer: counted (alarm `ApaceOffersUndelivered`), and the refund goes to card reversal. */
  private undeliverable(order: Order, refund: Refund, reason: string): Promise<string> {
    emitMetric('ApaceOffersUndelivered', 1);
    logger.error('an Apace offer cannot reach its customer: card reversal instead', { order_id: order.orderId, refund_id: refund.id, reason });
    return this.leaveApace(order, refund, reason);
  }

  private async emailOffer(apaceRefundId: string): Promise<PublishResult> {
    const result = await this.deps.apace!.sendOfferEmail(apaceRefundId);
    return result.kind === 'sent' ? { kind: 'published' } : result;
  }

  /** A refund Apace never heard of goes to card reversal at once; one it may have heard of, cancel first. */
  private async skipApace(order: Order, refund: Refund, reason: string): Promise<string> {
    const skipped = await this.apply(order, refund, 'apace_skipped', { reason }, reason);
    if (skipped.applied) return this.submitReversal(order, skipped.refund);
    return skipped.why === 'wrong_state' ? this.leaveApace(order, refund, reason) : `not moved off Apace (${skipped.why})`;
  }

  /** Cancel first (docs/design.md §2.3): only once Apace can no longer pay does the refund go to reversal. */
  private async leaveApace(order: Order, refund: Refund, reason: string): Promise<string> {
    const started = await this.apply(order, refund, 'offer_cancel_started', { reason }, reason);
    if (started.applied) return this.cancelOffer(order, started.refund);
    if (started.why !== 'apace_recently_verified') return `not moved off Apace (${started.why})`;
    // Apace said yes to someone recently and may be paying: wait out the claim window.
    const retryAt = new Date(Date.parse(refund.lastVerifiedAt ?? this.iso()) + this.deps.claimWindowMs + 1000).toISOString();
    await this.apply(order, refund, 'rescheduled', { nextAttemptAt: retryAt, reason: `${reason}; waiting for Apace's claim window` });
    return 'waiting for the Apace claim window';
  }

  private async cancelOffer(order: Order, refund: Refund): Promise<string> {
    const { apace, policy } = this.deps;
    if (!apace) return this.review(order, refund, 'cannot cancel the Apace offer: Apace is not configured');
    if (refund.attempts >= policy.maxAttempts) return this.review(order, refund, `Apace cancel failed after ${refund.attempts} attempts`);
    const claim = await this.claim(order, refund, 'attempt_started', 'apace');
    if (!claim.applied) return `not claimed (${claim.why})`;
    const result = await apace.cancel({
      orderId: apaceOrderId(order),
      itemIds: offerItems(order, refund).map((item) => item.itemId),
      ...(refund.refs.apaceRefundId && { apaceRefundId: refund.refs.apaceRefundId }),
    });
    switch (result.kind) {
      case 'cancelled':
      case 'not_found': {
        const cancelled = result.kind === 'cancelled' ? 'Apace offer cancelled' : 'no live Apace offer to cancel';
        // Ap21 showed the return exchanged or already refunded while the offer was live: no money on any channel.
        const notOwed = settledElsewhere(claim.refund);
        if (notOwed !== undefined) return this.review(order, claim.refund, `${notOwed} (${cancelled})`);
        const moved = await this.apply(order, claim.refund, 'offer_cancelled', {}, cancelled);
        if (moved.applied) return this.submitReversal(order, moved.refund);
        // A read of Ap21 marked it while Apace was answering: the store refused the move (not_settled_elsewhere).
        const markedMeanwhile = settledElsewhere(moved.refund);
        if (markedMeanwhile !== undefined) return this.review(order, moved.refund, `${markedMeanwhile} (${cancelled})`);
        return `not moved to reversal (${moved.why})`;
      }
      case 'refused':
        return this.cancelRefused(order, claim.refund, result.payout, result.reason);
      case 'failed':
        return result.retryable
          ? this.retryLater(order, claim.refund, result.reason)
          : this.review(order, claim.refund, `Apace cancel refused: ${result.reason}`);
    }
  }

  /** Apace would not cancel: its payout is under way or done (book it; the webhook may be lost) or failed. */
  private async cancelRefused(order: Order, refund: Refund, payout: 'pending' | 'processed' | 'failed' | 'unknown', reason: string): Promise<string> {
    if (payout === 'failed') return this.payoutFailed(order, refund, `Apace will not cancel: its payout failed (${reason})`);
    if (payout === 'unknown') {
      await this.apply(order, refund, 'offer_cancel_refused', { nextAttemptAt: later(this.now(), this.deps.policy.syncDelayMs) }, reason);
      return 'Apace refused to cancel; following up';
    }
    const paid = await this.apply(order, refund, payout === 'processed' ? 'apace_processed' : 'apace_paid', {}, `Apace refused to cancel: payout ${payout}`);
    if (paid.applied) reportApacePaidTwice(order.orderId, paid.refund);
    return paid.applied ? `paid through Apace (${payout})` : `not applied (${paid.why})`;
  }

  /** An offer is due when it expires or when a follow-up was scheduled: recover a lost webhook first. */
  private async followUpOffer(order: Order, refund: Refund): Promise<string> {
    const { apace } = this.deps;
    const apaceRefundId = refund.refs.apaceRefundId;
    if (apace && apaceRefundId) {
      const status = await apace.status(apaceRefundId);
      if (status.kind === 'found' && status.payout === 'failed') return this.payoutFailed(order, refund, 'Apace reports the payout failed');
      if (status.kind === 'found' && (status.payout === 'pending' || status.payout === 'processed')) {
        const event = status.payout === 'processed' ? 'apace_processed' : 'apace_paid';
        const paid = await this.apply(order, refund, event, {}, `Apace reports payout ${status.payout}; its webhook had not arrived`);
        if (paid.applied) reportApacePaidTwice(order.orderId, paid.refund);
        return paid.applied ? `recovered Apace payout (${status.payout})` : `not applied (${paid.why})`;
      }
      // Before expiry there is nothing to do but wait for it; after it, the cancel's answer tells
      // as much as the status would (a refusal carries Apace's status), so do not wait on a status.
      if (status.kind === 'failed' && refund.offerExpiresAt && refund.offerExpiresAt > this.iso()) {
        await this.apply(order, refund, 'rescheduled', { nextAttemptAt: refund.offerExpiresAt });
        return `Apace status unavailable (${status.reason}); waiting for the offer's expiry`;
      }
    }
    if (refund.offerExpiresAt && refund.offerExpiresAt > this.iso()) {
      await this.apply(order, refund, 'rescheduled', { nextAttemptAt: refund.offerExpiresAt });
      return 'offer still live';
    }
    return this.leaveApace(order, refund, 'the Apace offer expired');
  }

  /**
   * Apace's own record says the payout failed (docs/design.md §2.5): Apace can no longer pay the
   * offer, so no cancel is needed; the units stay held and the refund goes to card reversal.
   */
  private async payoutFailed(order: Order, refund: Refund, note: string): Promise<string> {
    const moved = await this.apply(order, refund, refund.state === 'paid' ? 'apace_payout_failed' : 'apace_offer_failed', {}, note);
    return moved.applied ? this.submitReversal(order, moved.refund) : `not moved to reversal (${moved.why})`;
  }

  /**
   * Paid at Apace's `pending`, its `processed` overdue: ask Apace's own record until it is confirmed
   * (book it) or found failed (card reversal); meanwhile ask again every sync delay and count it.
   */
  private async followUpPayout(order: Order, refund: Refund): Promise<string> {
    if (refund.channel !== 'apace' || refund.confirmedAt) return 'nothing to do';
    const { apace } = this.deps;
    const apaceRefundId = refund.refs.apaceRefundId;
    let detail = 'Apace is not configured to ask';
    if (apace && apaceRefundId) {
      this.ensureTime('apace');
      const status = await apace.status(apaceRefundId);
      if (status.kind === 'found' && status.payout === 'processed') {
        const confirmed = await this.apply(order, refund, 'apace_confirmed', {}, 'Apace reports the payout processed; its webhook had not arrived');
        return confirmed.applied ? 'confirmed the Apace payout' : `not confirmed (${confirmed.why})`;
      }
      if (status.kind === 'found' && status.payout === 'failed') return this.payoutFailed(order, refund, 'Apace reports the payout failed');
      detail = status.kind === 'found' ? `Apace reports payout ${status.payout}` : status.kind === 'not_found' ? 'Apace has no such refund' : status.reason;
    } else if (!apaceRefundId) detail = 'no Apace refund id to ask about';
    emitMetric('ApacePayoutsUnconfirmed', 1);
    logger.warn('an Apace payout is still unconfirmed', { order_id: order.orderId, refund_id: refund.id, detail });
    await this.apply(order, refund, 'apace_follow_up', { nextAttemptAt: later(this.now(), this.deps.policy.syncDelayMs) }, `processed overdue: ${detail}`);
    return `Apace payout unconfirmed: ${detail}`;
  }

  private async submitReversal(order: Order, refund: Refund): Promise<string> {
    // Ap21 showed the return settled elsewhere (docs/design.md §2.3): no money on the card unless an operator sends it on.
    const notOwed = settledElsewhere(refund);
    if (notOwed !== undefined) return this.review(order, refund, `${notOwed} (card reversal not submitted again)`);
    const provider = own(order.payments, refund.paymentId)?.provider;
    const receipt = this.deps.receipt;
    if (receipt && provider && fallbackWaitsForReceipt(refund, provider, receipt)) return this.awaitReceipt(order, refund, receipt.waitMs);
    const connector = this.connectorFor(order, refund);
    if (!connector)
      return this.review(order, refund, `no card-reversal connector for payment provider ${own(order.payments, refund.paymentId)?.provider ?? 'unknown'}`);
    if (refund.attempts >= this.deps.policy.maxAttempts) return this.review(order, refund, `card reversal failed after ${refund.attempts} attempts`);
    // Providers name our refund id (their idempotency reference) in their notifications: before a
    // provider first hears it, it must lead back to this order, and to no other order's refund.
    const linked = await this.deps.store.linkReference('refund', refund.id, { orderId: order.orderId }, this.iso());
    if (linked.orderId !== order.orderId) {
      return this.review(order, refund, `refund id ${refund.id} already names a refund of order ${linked.orderId}; a provider would take one for the other`);
    }
    const claim = await this.claim(order, refund, 'reversal_submitted', connector.provider);
    if (!claim.applied) return `not claimed (${claim.why})`;
    return this.recordReversal(order, claim.refund, await connector.submit(reversalRequest(order, claim.refund)));
  }

  /** A submitted reversal whose lease ran out (crash, timeout) or whose provider said pending. */
  private async followUpReversal(order: Order, refund: Refund): Promise<string> {
    const connector = this.connectorFor(order, refund);
    if (!connector) return this.review(order, refund, 'no card-reversal connector to follow up the submitted reversal');
    if (refund.attempts >= this.deps.policy.maxAttempts)
      return this.review(order, refund, `no final answer from the provider after ${refund.attempts} attempts`);
    const notOwed = settledElsewhere(refund);
    if (notOwed !== undefined) return this.askOnly(order, refund, connector, notOwed);
    // A status query, and a re-submission when the provider does not know the refund. The claim is
    // refused once Ap21 was seen showing the return settled elsewhere, also after this run read the order.
    const claim = await this.claim(order, refund, 'attempt_started', connector.provider, 2);
    if (!claim.applied) return `not claimed (${claim.why})`;
    const request = reversalRequest(order, claim.refund);
    let outcome = await connector.status(request);
    // Our refund id is the provider's idempotency reference, so asking again cannot pay twice.
    if (outcome.kind === 'unknown') outcome = await connector.submit(request);
    return this.recordReversal(order, claim.refund, outcome);
  }

  /**
   * A submitted reversal whose return Ap21 showed settled elsewhere (docs/design.md §2.3): the
   * provider is asked where it stands, and the answer booked, but the reversal is never sent again.
   * One the provider has no record of goes to an operator.
   */
  private async askOnly(order: Order, refund: Refund, connector: ReversalConnector, notOwed: string): Promise<string> {
    const claim = await this.claim(order, refund, 'reversal_status_started', connector.provider);
    if (!claim.applied) return `not claimed (${claim.why})`;
    const outcome = await connector.status(reversalRequest(order, claim.refund));
    if (outcome.kind === 'unknown') return this.review(order, claim.refund, `${notOwed} (card reversal not submitted again: ${outcome.detail})`);
    return this.recordReversal(order, claim.refund, outcome);
  }

  private async recordReversal(order: Order, refund: Refund, outcome: ReversalOutcome): Promise<string> {
    const refs: Record<string, string> = 'providerRef' in outcome && outcome.providerRef ? { providerRef: outcome.providerRef } : {};
    switch (outcome.kind) {
      case 'succeeded': {
        let paid = await this.apply(order, refund, 'reversal_succeeded', { refs }, outcome.detail);
        // Ap21 was seen showing the return settled elsewhere while the provider answered: booked knowing it.
        if (!paid.applied && paid.refund.state === 'reversal_submitted')
          paid = await this.apply(order, paid.refund, 'reversal_succeeded', { refs }, outcome.detail);
        const twice = paid.applied ? settledElsewhere(paid.refund) : undefined;
        if (twice !== undefined) {
          reportPaidTwice(order.orderId, refund.id, twice);
          return `reversed on the card, and paid twice: ${twice}`;
        }
        return 'reversed on the card';
      }
      case 'pending':
        await this.apply(order, refund, 'rescheduled', { refs, nextAttemptAt: later(this.now(), this.deps.policy.syncDelayMs) }, outcome.detail);
        return 'provider pending';
      case 'unknown':
        return this.retryLater(order, refund, outcome.detail, 'rescheduled');
      case 'failed':
        if (outcome.retryable) return this.retryLater(order, refund, outcome.detail, 'reversal_retry');
        return this.review(order, refund, `provider refused the reversal: ${outcome.detail}`);
    }
  }

  private async retryLater(order: Order, refund: Refund, reason: string, event: 'rescheduled' | 'reversal_retry' = 'rescheduled'): Promise<string> {
    const delay = backoffDelayMs(Math.max(1, refund.attempts), this.deps.policy, this.random);
    await this.apply(order, refund, event, { nextAttemptAt: later(this.now(), delay) }, reason);
    return `retry in ${Math.round(delay / 1000)} s: ${reason}`;
  }

  /**
   * A refund that left Apace for a card reversal the stage holds until Ap21 shows the return
   * received (docs/design.md §2.9): it waits as a new refund would, until the end of the wait
   * counted from when the return was seen. One conditional write, refused when the receipt was
   * noted meanwhile (then the refund stays due and is reversed at once). A wait already over goes
   * straight on to manual review.
   */
  private async awaitReceipt(order: Order, refund: Refund, waitMs: number): Promise<string> {
    const until = new Date(Date.parse(refund.createdAt) + waitMs).toISOString();
    const note = `the stage reverses this card only once Ap21 shows the return received: waiting until ${until}`;
    const moved = await this.apply(order, refund, 'fallback_awaits_receipt', { nextAttemptAt: until }, note);
    if (!moved.applied) return `not moved to wait for the receipt (${moved.why})`;
    if (until <= this.iso()) return this.receiptOverdue(order, moved.refund);
    return `awaiting the receipt until ${until}`;
  }

  /**
   * The wait for Ap21 to show the return received ran out (docs/design.md §2.9): not an error, but
   * nobody is to wait in silence. The refund goes to manual review with the reason (a receipt seen
   * later still releases it), and `ReturnsNotReceived` raises its alarm.
   */
  private async receiptOverdue(order: Order, refund: Refund): Promise<string> {
    const reason = `${RECEIPT_OVERDUE_REASON} the stage's wait (ended ${refund.nextAttemptAt ?? refund.createdAt}): a later receipt still pays it; else redrive or release`;
    const moved = await this.apply(order, refund, 'receipt_overdue', { reason });
    if (!moved.applied) return `not moved to review (${moved.why})`;
    logger.error('return not received in time: refund needs manual review', { order_id: order.orderId, refund_id: refund.id, reason });
    emitMetric('ReturnsNotReceived', 1);
    emitMetric('RefundsInManualReview', 1);
    return `manual review: ${reason}`;
  }

  /**
   * Refundid has not said whether it paid this RMA (docs/design.md §2.5, the wait table). Refundid
   * pays the customer itself, so nothing here may decide: the reason goes on the refund, an operator
   * is told (`RefundidResultsOverdue`) and reminded every `REFUNDID_REMINDER_MS` while it lasts. A late
   * `refundid` or `failed` from Refundid still applies as it would have.
   */
  private async refundidOverdue(order: Order, refund: Refund): Promise<string> {
    const reason = `${REFUNDID_OVERDUE_REASON} for RMA ${refund.source.ref} since ${refund.createdAt}: check the RMA with Refundid`;
    const noted = await this.apply(order, refund, 'refundid_overdue', { reason, nextAttemptAt: later(this.now(), REFUNDID_REMINDER_MS) });
    if (!noted.applied) return `not noted (${noted.why})`;
    logger.error('a Refundid RMA has no outcome: an operator must check it with Refundid', { order_id: order.orderId, refund_id: refund.id, reason });
    emitMetric('RefundidResultsOverdue', 1);
    return `Refundid outcome overdue: ${reason}`;
  }

  private async review(order: Order, refund: Refund, why: string): Promise<string> {
    // A refund Ap21 showed settled elsewhere reaches the operator with that said, whatever path sent it (docs/design.md §2.3):
    // their redrive outranks the mark. After the path's own short words; refs.settledElsewhere keeps the whole of it.
    const notOwed = settledElsewhere(refund);
    const reason = notOwed !== undefined && !why.includes(notOwed) ? `${why}; ${notOwed}` : why;
    const moved = await this.apply(order, refund, 'review_required', { reason });
    if (moved.applied) {
      logger.error('refund needs manual review', { order_id: order.orderId, refund_id: refund.id, reason });
      emitMetric('RefundsInManualReview', 1);
    }
    return moved.applied ? `manual review: ${reason}` : `not moved to review (${moved.why})`;
  }

  private connectorFor(order: Order, refund: Refund): ReversalConnector | undefined {
    const provider = own(order.payments, refund.paymentId)?.provider;
    return provider ? this.deps.reversals[provider] : undefined;
  }

  /**
   * Takes the work: counts the attempt and holds a lease for the length of a provider call. Only
   * when the call fits in the invocation's remaining time: otherwise nothing is written and the
   * refund stays due as it was.
   */
  private claim(
    order: Order,
    refund: Refund,
    event: 'attempt_started' | 'reversal_submitted' | 'reversal_status_started',
    channel: CallChannel,
    calls = 1,
  ): Promise<TransitionOutcome> {
    this.ensureTime(channel, calls);
    return this.apply(order, refund, event, { nextAttemptAt: later(this.now(), this.deps.policy.leaseMs) });
  }

  /** Throws `NoTimeForCall` unless `calls` provider calls of the channel fit in the invocation's remaining time. */
  private ensureTime(channel: CallChannel, calls = 1): void {
    const budget = this.deps.callBudget;
    if (!budget) return;
    const timeouts = Object.values(budget.timeoutMs);
    const needed = calls * (budget.timeoutMs[channel] ?? Math.max(0, ...timeouts)) + budget.marginMs;
    const left = remainingMs();
    if (left <= needed) throw new NoTimeForCall(`${Math.max(0, Math.floor(left))} ms left, a ${channel} call needs ${needed} ms`);
  }

  /**
   * One transition, one write: with it goes the order's next due time, computed from the order as
   * this run read it and changed it, so no separate reschedule write follows (docs/design.md §2.4).
   * Once the order changed under us (the write reports it), the run reschedules at its end instead.
   */
  private async apply(order: Order, refund: Refund, event: RefundEvent, extra: Partial<TransitionContext>, note?: string): Promise<TransitionOutcome> {
    const { claimWindowMs, apaceProcessedWithinMs } = this.deps;
    const ctx: TransitionContext = { now: this.iso(), claimWindowMs, ...(apaceProcessedWithinMs !== undefined && { apaceProcessedWithinMs }), ...extra };
    const tracked = this.tracked.get(order);
    let schedule: Schedule | undefined;
    if (tracked?.folding) {
      const plan = planTransition(refund, event, ctx);
      if (plan.ok) schedule = { version: tracked.version, dueAt: earliestDue({ ...tracked.refunds, [refund.id]: plan.refund }) };
    }
    const outcome = await this.deps.store.applyEvent(order.orderId, refund.id, event, ctx, { actor: this.actor, ...(note && { note }) }, refund, schedule);
    if (tracked) {
      if (outcome.applied) tracked.refunds[refund.id] = outcome.refund;
      if (outcome.applied && outcome.scheduled) {
        tracked.version++;
        tracked.scheduled = true;
      } else {
        tracked.folding = false;
      }
    }
    return outcome;
  }

  /** Records when the order next needs attention, against the version it was computed from. */
  private async reschedule(orderId: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const order = await this.deps.store.getOrder(orderId);
      if (!order) return;
      const due = earliestDue(order.refunds);
      if (due === order.dueAt || (await this.deps.store.reschedule(orderId, order.version, due))) return;
    }
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

/** Items as Apace sees them: scoped to the refund, so a retried create meets Apace's duplicate guard. */
export function offerItems(order: Order, refund: Refund, itemUrlTemplate?: string): OfferItem[] {
  const orderNumber = apaceOrderId(order);
  return Object.entries(refund.lines).map(([lineId, units]) => {
    const line = own(order.lines, lineId);
    const unitMinor = line && line.valueMinor % line.purchased === 0 ? line.valueMinor / line.purchased : undefined;
    const url = itemUrlTemplate && fillTemplate(itemUrlTemplate, { orderNumber, sku: line?.sku });
    return {
      ...(url && { url }),
      itemId: `${refund.id}:${lineId}`,
      displayName: line?.title ?? line?.sku ?? `Item ${lineId}`,
      ...(line?.sku && { sku: line.sku }),
      ...(unitMinor !== undefined && { unitPrice: { minor: unitMinor, currency: order.currency } }),
      quantity: units,
    };
  });
}

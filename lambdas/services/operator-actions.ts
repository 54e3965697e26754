import { apacePayoutFailed, apaceQuietCutoff, guardHolds, type Refund, type RefundEvent, type TransitionContext } from '../domain/refund';
import type { OrderStore } from '../store/order-store';

/**
 * What an operator may do to end a refund in manual review (docs/design.md §2.5, "the operator can
 * always end a refund"), on every channel, each with a reason written to the timeline: re-route it
 * to card reversal, or release its units unpaid.
 */
export type OperatorAction = 'reroute' | 'release';

export interface OperatorRequest {
  readonly orderId: string;
  readonly refund: Refund;
  /** Why, in the operator's words: written to the refund and its timeline. */
  readonly reason: string;
  /** Who asked. */
  readonly operator: string;
  readonly now: string;
  readonly claimWindowMs: number;
  /** The operator checked the provider's own record and it shows no payout (needed to release a reversal once sent). */
  readonly providerChecked?: boolean;
}

export type OperatorOutcome =
  { readonly done: true; readonly event: RefundEvent; readonly refund: Refund; readonly next: string } | { readonly done: false; readonly why: string };

/**
 * The event that re-routes a refund to card reversal. Off Apace it goes straight there. On Apace,
 * Apace may pay whenever it last heard `allow_refund: true`, so the offer is cancelled first
 * (docs/design.md §2.3); a payout Apace reports failed then moves on to card reversal by itself.
 */
function rerouteEvent(refund: Refund): { event: RefundEvent; next: string } {
  if (refund.channel === 'apace') return { event: 'redrive_apace', next: 'cancel the Apace offer first (or find its payout failed), then card reversal' };
  return { event: 'rerouted_by_operator', next: 'card reversal with a fresh attempt budget' };
}

export async function endRefund(store: OrderStore, action: OperatorAction, request: OperatorRequest): Promise<OperatorOutcome> {
  const { refund, orderId } = request;
  if (refund.state !== 'manual_review') return { done: false, why: `refund ${refund.id} is ${refund.state}, not in manual review` };
  const reason = request.reason.trim();
  if (!reason) return { done: false, why: 'a reason is required' };
  // A card reversal once sent may have paid without our hearing (no final answer is why many reach
  // review): releasing its units could pay the customer twice, so the provider's record is checked first.
  if (action === 'release' && refund.channel === 'reversal' && !request.providerChecked) {
    const sent = (await store.readTimeline(orderId)).find((entry) => entry.refundId === refund.id && entry.event === 'reversal_submitted');
    if (sent) {
      return {
        done: false,
        why: `its card reversal was sent to the provider at ${sent.at}; check the provider's own record (npm run ops -- reconcile, or the provider's console), then release with --provider-checked if it did not pay, or reroute`,
      };
    }
  }
  const plan =
    action === 'release' ? { event: 'released_by_operator' as const, next: 'its units are available again; nothing will pay it' } : rerouteEvent(refund);
  const verb = action === 'release' ? 'released' : 're-routed to card reversal';
  const ctx: TransitionContext = { now: request.now, claimWindowMs: request.claimWindowMs, reason: `${verb} by ${request.operator}: ${reason}` };
  // Released units could go out through another channel while Apace still pays: wait out its claim.
  const apaceMayPay = refund.channel === 'apace' && !apacePayoutFailed(refund) && !guardHolds(refund, 'apace_quiet', ctx);
  const outcome = apaceMayPay
    ? ({ applied: false, why: 'apace_recently_verified', refund } as const)
    : await store.applyEvent(orderId, refund.id, plan.event, ctx, { actor: 'operator', note: `${verb} by ${request.operator}: ${reason}` }, refund);
  if (outcome.applied) return { done: true, event: plan.event, refund: outcome.refund, next: plan.next };
  if (outcome.why === 'apace_recently_verified') {
    const until = new Date(Date.parse(refund.lastVerifiedAt ?? request.now) + request.claimWindowMs).toISOString();
    return {
      done: false,
      why: `Apace was told allow_refund at ${refund.lastVerifiedAt} and may still pay until ${until} (cutoff now ${apaceQuietCutoff(ctx)}); try again after that`,
    };
  }
  return { done: false, why: `refund ${refund.id} changed meanwhile (now ${outcome.refund.state})` };
}

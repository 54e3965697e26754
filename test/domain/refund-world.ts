import fc from 'fast-check';
import { UnitsUnavailableError } from '../../lambdas/domain/errors';
import { addRefund, applyRefundEvent, ledgerViolations, openOrder, recordVerification, type Order } from '../../lambdas/domain/order';
import { verificationDecision, type Channel, type RefundEvent } from '../../lambdas/domain/refund';

/**
 * A model of the world around one order: Apace, a card-reversal provider and Refundid, acting in
 * any order against the pure domain. Each provider's payouts are counted on its side, so the
 * checks compare what the domain believes with the money that actually moved.
 *
 * Assumptions (documented in docs/design.md §2.3): Apace pays only after a verification answered
 * `allow_refund: true`, and within `APACE_PAYOUT_WINDOW_MS` of it, or it asks again; it may pay
 * even if a cancel slipped in after that answer (the pessimistic case). Reversal providers pay at
 * most once per merchant reference (our refund id).
 */
export const APACE_PAYOUT_WINDOW_MS = 60_000;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

export type Step =
  | { kind: 'create'; route: Channel; lines: number[]; expiresInWindows: number }
  | {
      kind: 'apace_create' | 'apace_verify' | 'apace_payout' | 'expire' | 'apace_cancel_call' | 'reversal_submit' | 'provider_proof' | 'redrive' | 'release';
      r: number;
    }
  | { kind: 'deliver_webhook'; r: number; which: number; duplicate: boolean }
  | { kind: 'provider_result'; r: number; outcome: 'success' | 'paid_but_timed_out' | 'retryable' | 'permanent' }
  | { kind: 'rma'; r: number; status: 'refundid' | 'failed' }
  | { kind: 'tick'; ms: number };

interface RefundWorld {
  apaceOffer: 'none' | 'live' | 'cancelled';
  apaceApprovedAt?: number;
  apacePaid: boolean;
  webhooks: ('pending' | 'processed')[];
  providerPaid: boolean;
  refundidPaid: boolean;
}

export function stepArb(refunds: number): fc.Arbitrary<Step> {
  const refundIndex = fc.nat({ max: refunds - 1 });
  const on = <K extends string>(kind: K, weight: number) => ({ weight, arbitrary: fc.record({ kind: fc.constant(kind), r: refundIndex }) });
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('create' as const),
        route: fc.constantFrom<Channel>('apace', 'reversal', 'refundid'),
        lines: fc.array(fc.nat({ max: 2 }), { minLength: 3, maxLength: 3 }),
        expiresInWindows: fc.integer({ min: 2, max: 30 }),
      }),
    },
    on('apace_create', 3),
    on('apace_verify', 4),
    on('apace_payout', 4),
    on('expire', 2),
    on('apace_cancel_call', 3),
    on('reversal_submit', 3),
    on('redrive', 1),
    on('release', 1),
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver_webhook' as const), r: refundIndex, which: fc.nat(), duplicate: fc.boolean() }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('provider_result' as const),
        r: refundIndex,
        outcome: fc.constantFrom('success' as const, 'paid_but_timed_out' as const, 'retryable' as const, 'permanent' as const),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('rma' as const), r: refundIndex, status: fc.constantFrom('refundid' as const, 'failed' as const) }) },
    on('provider_proof', 2),
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 2 * APACE_PAYOUT_WINDOW_MS }) }) },
  );
}

/** One order with three lines, and a run of steps spread over up to `refunds` refunds. */
export function scenarioArb(refunds = 4) {
  return fc.record({
    purchased: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
    steps: fc.array(stepArb(refunds), { minLength: 10, maxLength: 80, size: 'max' }),
  });
}

/** A claim window that treats every verification as long past: the Apace guard switched off. */
export const GUARD_OFF = -1;

export interface RunResult {
  order: Order;
  problems: string[];
  stats: { created: number; paidVia: Record<Channel, number> };
}

/** Plays a scenario; `claimWindowMs` is what refund-relay assumes about Apace (the guard under test). */
export function play(scenario: { purchased: number[]; steps: Step[] }, claimWindowMs = APACE_PAYOUT_WINDOW_MS): RunResult {
  let now = T0;
  const iso = () => new Date(now).toISOString();
  let order = openOrder(
    {
      orderId: 'o1',
      currency: 'AUD',
      lines: scenario.purchased.map((quantity, i) => ({ lineId: `l${i}`, quantity, valueMinor: quantity * 1000 })),
      payments: [{ paymentId: 'p1', capturedMinor: scenario.purchased.reduce((a, q) => a + q * 1000, 0), provider: 'addon_payments' }],
    },
    iso(),
  );
  const ids: string[] = [];
  const world = new Map<string, RefundWorld>();
  const problems: string[] = [];
  let created = 0;

  const apply = (id: string, event: RefundEvent, reason?: string) => {
    const result = applyRefundEvent(order, id, event, { now: iso(), claimWindowMs, ...(reason && { reason }) });
    order = result.order;
    return result.plan.ok;
  };
  const verify = (id: string) => {
    order = recordVerification(order, id, iso());
    const refund = order.refunds[id]!;
    return verificationDecision(refund, iso());
  };

  for (const step of scenario.steps) {
    if (step.kind === 'tick') {
      now += step.ms;
      continue;
    }
    if (step.kind === 'create') {
      const lines = Object.fromEntries(
        step.lines.map((units, i) => [`l${i}`, Math.min(units, scenario.purchased[i]!)] as const).filter(([, units]) => units > 0),
      );
      if (Object.keys(lines).length === 0) continue;
      const id = `r${ids.length}`;
      try {
        const amount = Object.values(lines).reduce((a, units) => a + units * 1000, 0);
        const result = addRefund(
          order,
          {
            refundId: id,
            lines,
            paymentId: 'p1',
            amount: { minor: amount, currency: 'AUD' },
            route: step.route,
            source: { kind: step.route === 'refundid' ? 'refundid_rma' : 'ap21_return', ref: id },
            ...(step.route === 'apace' && { offerExpiresAt: new Date(now + step.expiresInWindows * APACE_PAYOUT_WINDOW_MS).toISOString() }),
          },
          iso(),
        );
        order = result.order;
        ids.push(id);
        world.set(id, { apaceOffer: 'none', apacePaid: false, webhooks: [], providerPaid: false, refundidPaid: false });
        created++;
      } catch (error) {
        if (!(error instanceof UnitsUnavailableError)) throw error;
      }
      continue;
    }
    if (ids.length === 0) continue;
    const id = ids[step.r % ids.length]!;
    const w = world.get(id)!;
    const refund = order.refunds[id]!;
    switch (step.kind) {
      case 'apace_create':
        // Apace calls the verification URL during creation and creates the offer whatever it hears.
        if (refund.state === 'offer_pending' && w.apaceOffer === 'none') {
          verify(id);
          w.apaceOffer = 'live';
          apply(id, 'offer_created');
        }
        break;
      case 'apace_verify':
        if (w.apaceOffer === 'live' && !w.apacePaid && verify(id) === 'allowed') w.apaceApprovedAt = now;
        break;
      case 'apace_payout':
        if (w.apaceApprovedAt !== undefined && !w.apacePaid) {
          if (now - w.apaceApprovedAt <= APACE_PAYOUT_WINDOW_MS) {
            w.apacePaid = true;
            w.webhooks.push('pending', 'processed');
          } else {
            w.apaceApprovedAt = undefined;
          }
        }
        break;
      case 'deliver_webhook': {
        if (w.webhooks.length === 0) break;
        const index = step.which % w.webhooks.length;
        const kind = w.webhooks[index]!;
        if (!step.duplicate) w.webhooks.splice(index, 1);
        if (kind === 'pending') {
          apply(id, refund.state === 'manual_review' ? 'apace_paid_after_review' : 'apace_paid');
        } else if (!apply(id, refund.state === 'manual_review' ? 'apace_paid_after_review' : 'apace_processed')) {
          apply(id, 'apace_confirmed');
        }
        break;
      }
      case 'expire':
        apply(id, 'offer_cancel_started', 'offer expired');
        break;
      case 'apace_cancel_call':
        if (refund.state !== 'offer_cancelling') break;
        // Apace refuses to cancel once its payout is under way; otherwise the offer is gone.
        if (w.apacePaid) {
          apply(id, 'offer_cancel_refused');
        } else {
          if (w.apaceOffer === 'live') w.apaceOffer = 'cancelled';
          apply(id, 'offer_cancelled');
        }
        break;
      case 'reversal_submit':
        apply(id, 'reversal_submitted');
        break;
      case 'provider_result':
        if (refund.state !== 'reversal_submitted') break;
        if (step.outcome === 'success' || step.outcome === 'paid_but_timed_out') w.providerPaid = true;
        if (step.outcome === 'success') apply(id, 'reversal_succeeded');
        else if (step.outcome === 'permanent') apply(id, 'review_required', 'provider refused');
        else apply(id, 'reversal_retry');
        break;
      case 'rma':
        if (refund.state !== 'refundid_pending') break;
        if (step.status === 'refundid') {
          w.refundidPaid = true;
          apply(id, 'refundid_refunded');
        } else {
          apply(id, 'refundid_failed');
        }
        break;
      case 'provider_proof':
        // A signed IPN or the provider's own transaction details: it exists only if the provider paid.
        if (w.providerPaid) apply(id, refund.state === 'reversal_submitted' ? 'reversal_succeeded' : 'reversal_confirmed');
        break;
      case 'redrive':
        apply(id, refund.channel === 'apace' ? 'redrive_apace' : 'redrive_reversal');
        break;
      case 'release':
        // An operator releases only what no channel paid (they check the providers first).
        if (!w.apacePaid && !w.providerPaid && !w.refundidPaid) apply(id, 'released_by_operator', 'operator checked providers');
        break;
    }
    problems.push(...checkInvariants(order, world, scenario.purchased).map((p) => `after ${JSON.stringify(step)}: ${p}`));
    if (problems.length) break;
  }
  const paidVia: Record<Channel, number> = { apace: 0, reversal: 0, refundid: 0, exchange: 0 };
  for (const refund of Object.values(order.refunds)) if (refund.state === 'paid') paidVia[refund.channel]++;
  return { order, problems, stats: { created, paidVia } };
}

function checkInvariants(order: Order, world: Map<string, RefundWorld>, purchased: number[]): string[] {
  const problems = ledgerViolations(order);
  const paidUnits = purchased.map(() => 0);
  for (const [id, w] of world) {
    const payouts = Number(w.apacePaid) + Number(w.providerPaid) + Number(w.refundidPaid);
    if (payouts > 1) problems.push(`refund ${id} paid ${payouts} times (apace=${w.apacePaid} reversal=${w.providerPaid} refundid=${w.refundidPaid})`);
    const refund = order.refunds[id]!;
    if (payouts > 0) for (const [lineId, units] of Object.entries(refund.lines)) paidUnits[Number(lineId.slice(1))]! += units;
    if (refund.state === 'paid') {
      // The world makes no exchanges: a refund on that channel would be one nothing created.
      const paidVia = { apace: w.apacePaid, reversal: w.providerPaid, refundid: w.refundidPaid, exchange: false }[refund.channel];
      if (!paidVia) problems.push(`refund ${id} is paid via ${refund.channel} but that channel paid nothing`);
    }
  }
  paidUnits.forEach((units, i) => {
    if (units > purchased[i]!) problems.push(`line l${i}: ${units} units paid out of ${purchased[i]} purchased`);
  });
  return problems;
}

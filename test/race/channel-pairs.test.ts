import { UnitsUnavailableError } from '../../lambdas/domain/errors';
import { openOrder } from '../../lambdas/domain/order';
import type { Channel } from '../../lambdas/domain/refund';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import { createRefundidSimulator, type RefundidSimulator, type RmaRun } from '../../simulators/refundid/simulator';
import { refundidRefundId } from '../../lambdas/providers/refundid/statuses';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let sims: ProviderSimulators;
let portal: RefundidSimulator;
let dispatcher: Dispatcher;

beforeAll(async () => {
  stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1' });
  sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 20, apaceWebhookRetryGapMs: 50 });
  Object.assign(process.env, sims.env);
  portal = createRefundidSimulator({ baseUrl: stack.url, bearerToken: String(stack.secrets.refundid.bearerToken) });
  dispatcher = createDispatcher(stack.runtime, process.env, {
    claimWindowMs: 200,
    policy: { maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 },
  });
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});

type Contender = Extract<Channel, 'apace' | 'reversal' | 'refundid'>;

const PER_SIDE = 25;
const UNIT_MINOR = 4_000;
const CARD = '4242';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each channel against itself, and every pair of channels both ways round: each channel holds the unit against each other. */
const PAIRS: [Contender, Contender][] = [
  ['apace', 'apace'],
  ['reversal', 'reversal'],
  ['refundid', 'refundid'],
  ['apace', 'reversal'],
  ['reversal', 'apace'],
  ['apace', 'refundid'],
  ['refundid', 'apace'],
  ['reversal', 'refundid'],
  ['refundid', 'reversal'],
];

interface Attempt {
  readonly channel: Contender;
  readonly id: string;
}

interface Claimed {
  readonly attempt: Attempt;
  readonly won: boolean;
  /** The RMA run, for Refundid: its `refunding` answer, and Refundid's payout and `refundid` push when it won. */
  readonly rma?: RmaRun;
}

/** An order of one unit, paid by card through EPG with the last four digits known: every channel can refund it. */
async function openOneUnitOrder(orderId: string): Promise<void> {
  const transactionId = `tx-${orderId}`;
  sims.addonPayments.seed({ transactionId, amount: { minor: UNIT_MINOR, currency: 'AUD' } });
  await stack.runtime.store.putOrder(
    openOrder(
      {
        orderId,
        currency: 'AUD',
        lines: [{ lineId: '1', quantity: 1, valueMinor: UNIT_MINOR, title: 'Linen shirt' }],
        payments: [{ paymentId: 'p1', capturedMinor: UNIT_MINOR, provider: 'addon_payments', transactionId, cardLastFour: CARD }],
      },
      new Date().toISOString(),
    ),
  );
}

/**
 * One attempt on the unit through the channel's real entry point. Refundid: the RMA's `refunding`
 * push over HTTP and, once accepted, Refundid's payout and `refundid` push. Apace and card reversal:
 * the refund written as the Ap21 ingestion writes it, and the dispatcher rung at once, as the
 * doorbell would — so the winner's offer or reversal is under way while the others still try.
 */
async function claim(orderId: string, attempt: Attempt): Promise<Claimed> {
  if (attempt.channel === 'refundid') {
    const rma = await portal.runRma({ refundid_id: attempt.id, line_items: [{ merchant_order_ref: orderId, line_item_ref: '1', quantity: 1 }] });
    if (rma.reserved.status !== 200 && rma.reserved.status !== 409)
      throw new Error(`RMA ${attempt.id}: ${rma.reserved.status} ${JSON.stringify(rma.reserved.body)}`);
    return { attempt, won: rma.reserved.status === 200, rma };
  }
  const now = new Date();
  try {
    await stack.runtime.store.createRefund(
      orderId,
      {
        refundId: attempt.id,
        lines: { '1': 1 },
        paymentId: 'p1',
        amount: { minor: UNIT_MINOR, currency: 'AUD' },
        route: attempt.channel,
        source: { kind: 'ap21_return', ref: attempt.id },
        ...(attempt.channel === 'apace' && { offerExpiresAt: new Date(now.getTime() + 3_600_000).toISOString() }),
      },
      now.toISOString(),
      { actor: 'ap21' },
    );
  } catch (error) {
    if (error instanceof UnitsUnavailableError) return { attempt, won: false };
    throw error;
  }
  await dispatcher.processOrder(orderId);
  return { attempt, won: true };
}

/** Offers are taken by the customer and reversals followed up until nothing is left in flight. */
async function driveToCompletion(orderId: string): Promise<void> {
  const accepted = new Set<string>();
  const deadline = Date.now() + 10_000;
  for (;;) {
    await dispatcher.processOrder(orderId);
    const refunds = Object.values((await stack.runtime.store.getOrder(orderId))!.refunds);
    if (refunds.every((refund) => refund.state === 'paid')) return;
    if (Date.now() > deadline) throw new Error(`still in flight: ${refunds.map((refund) => `${refund.id} ${refund.state}`).join(', ')}`);
    for (const refund of refunds) {
      if (refund.state !== 'offered' || !refund.refs.apaceRefundId || accepted.has(refund.id)) continue;
      accepted.add(refund.id);
      expect(await sims.apace.customerAccepts(refund.refs.apaceRefundId, CARD)).toBe('paid');
    }
    await sleep(20);
  }
}

describe('50 concurrent attempts to refund the same unit, for every pair of channels', () => {
  it.each(PAIRS)('%s first, %s racing it: one attempt wins, and the unit is paid out exactly once', async (first, second) => {
    const orderId = `pair-${first}-${second}`;
    await openOneUnitOrder(orderId);
    const side = (channel: Contender, name: string): Attempt[] =>
      Array.from({ length: PER_SIDE }, (_, i) => ({ channel, id: `${orderId}-${name}${i}-${channel}` }));
    const attempts = [...side(first, 'a'), ...side(second, 'b')];

    // The first 25 fire at once. The other 25 fire the moment one of them has its answer — the
    // unit is taken then — while the first side's 24 others, and the winner's Apace offer, card
    // reversal or Refundid payout, are still in flight.
    const firstClaims = attempts.slice(0, PER_SIDE).map((attempt) => claim(orderId, attempt));
    await Promise.race(firstClaims);
    const secondClaims = attempts.slice(PER_SIDE).map((attempt) => claim(orderId, attempt));
    const claims = await Promise.all([...firstClaims, ...secondClaims]);
    const won = claims.filter((c) => c.won);
    expect(won).toHaveLength(1);
    const winner = won[0]!.attempt;
    expect(winner.id).toMatch(/-a\d+-/);
    // Every loser was refused because the unit was taken: Refundid heard 409 and was never paid.
    for (const lost of claims.filter((c) => !c.won)) {
      if (lost.attempt.channel === 'refundid') expect([lost.rma!.reserved.status, lost.rma!.paid]).toEqual([409, false]);
    }

    await driveToCompletion(orderId);

    // Money that moved, counted where it moved, for every attempt of the round.
    const ids = new Set(attempts.map((attempt) => attempt.id));
    const refundidIds = new Set(attempts.filter((a) => a.channel === 'refundid').map((a) => refundidRefundId({ refundid_id: a.id })));
    const count = (payouts: ReadonlyMap<string, number>, of: Set<string>) =>
      [...payouts].filter(([reference]) => of.has(reference)).reduce((sum, [, n]) => sum + n, 0);
    const refundidPushesApplied = claims.filter((c) => c.rma?.final?.status === 200 && (c.rma.final.body as { state?: string }).state === 'paid').length;
    const payouts = {
      apace: count(sims.apace.payouts(), ids),
      epg: count(sims.addonPayments.payouts(), ids),
      refundid: count(portal.payouts(), refundidIds),
    };
    expect(payouts).toEqual({
      apace: winner.channel === 'apace' ? 1 : 0,
      epg: winner.channel === 'reversal' ? 1 : 0,
      refundid: winner.channel === 'refundid' ? 1 : 0,
    });
    expect(refundidPushesApplied).toBe(winner.channel === 'refundid' ? 1 : 0);
    expect(sims.apace.offers().filter((offer) => offer.orderId === orderId)).toHaveLength(winner.channel === 'apace' ? 1 : 0);

    // The books agree: one refund, paid through the winner's channel, and the unit refunded once.
    const order = (await stack.runtime.store.getOrder(orderId))!;
    const refunds = Object.values(order.refunds);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ state: 'paid', channel: winner.channel });
    expect(order.lines['1']).toMatchObject({ purchased: 1, refunded: 1, reserved: 0 });
    expect(order.payments.p1).toMatchObject({ refundedMinor: UNIT_MINOR, reservedMinor: 0 });
  });
});

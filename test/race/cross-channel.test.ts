import { UnitsUnavailableError } from '../../lambdas/domain/errors';
import type { Channel } from '../../lambdas/domain/refund';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import type { RapiOrder } from '../../lambdas/providers/refundid/schemas';
import { createRefundidSimulator, type RefundidSimulator } from '../../simulators/refundid/simulator';
import type { Dispatcher } from '../../lambdas/services/dispatcher';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { openAp21Order, startAp21ForStack, type Ap21ForStack } from '../support/ap21-orders';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let sims: ProviderSimulators;
let ap21: Ap21ForStack;
let portal: RefundidSimulator;
let dispatcher: Dispatcher;

beforeAll(async () => {
  stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1' });
  sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 20, apaceWebhookRetryGapMs: 50 });
  ap21 = await startAp21ForStack(stack);
  Object.assign(process.env, sims.env, ap21.env);
  portal = createRefundidSimulator({ baseUrl: stack.url, bearerToken: String(stack.secrets.refundid.bearerToken) });
  dispatcher = createDispatcher(stack.runtime, process.env, {
    claimWindowMs: 200,
    policy: { maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 50, leaseMs: 2_000, syncDelayMs: 100 },
  });
});
afterAll(async () => {
  await ap21.host.close();
  await sims.close();
  await stack.close();
});

const UNIT_MINOR = 2_000;
const CARD = '4242';
type Contender = { channel: Channel; id: string };

/** Same mixes every run: each round asks for `extra` units more than the line has (or fewer). */
const ROUNDS = [
  { units: 3, contenders: ['refundid', 'apace', 'reversal', 'refundid', 'apace', 'reversal'] },
  { units: 4, contenders: ['apace', 'apace', 'refundid', 'reversal', 'reversal', 'refundid', 'refundid'] },
  { units: 5, contenders: ['refundid', 'refundid', 'refundid', 'apace', 'reversal'] },
  { units: 2, contenders: ['reversal', 'apace', 'refundid', 'refundid', 'apace', 'reversal', 'refundid', 'apace'] },
  { units: 3, contenders: ['refundid', 'apace'] },
  { units: 4, contenders: ['apace', 'reversal', 'refundid', 'apace', 'reversal', 'refundid'] },
] as const satisfies readonly { units: number; contenders: readonly Channel[] }[];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a Refundid RMA, an Apace offer and a card reversal competing for the same units', () => {
  it.each(ROUNDS.map((round, i) => [i, round.units, round.contenders.length, round] as const))(
    'round %d: %d units, %d contenders — at most one payout per unit, and the order fetch shows what is left',
    async (round, units, _, { contenders }) => {
      const { store } = stack.runtime;
      const { ap21: placed, order } = await openAp21Order(
        store,
        ap21.sim,
        { email: `race${round}@example.com`, lines: [{ skuId: '21503', quantity: units, priceMinor: UNIT_MINOR, productName: 'LINEN SHIRT' }] },
        { provider: 'addon_payments', cardLastFour: CARD },
      );
      const lineId = placed.lines[0]!.lineId;
      const stan = order.payments[placed.payments[0]!.paymentId]!.transactionId!;
      sims.addonPayments.seed({ transactionId: stan, amount: { minor: units * UNIT_MINOR, currency: 'AUD' } });
      const returnable = async () => {
        const { status, body } = await portal.fetchOrder({ order_number: placed.orderNumber, email: `race${round}@example.com` });
        expect(status).toBe(200);
        return (body as RapiOrder).line_items[0]!.returnable_quantity;
      };
      expect(await returnable()).toBe(units);

      // Every contender asks for one unit at once; order fetches run in between.
      const all: Contender[] = contenders.map((channel, i) => ({ channel, id: `x${round}-${channel}-${i}` }));
      const now = new Date().toISOString();
      const claim = async ({ channel, id }: Contender): Promise<boolean> => {
        if (channel === 'refundid') {
          const run = await portal.runRma({ refundid_id: id, line_items: [{ merchant_order_ref: order.orderId, line_item_ref: lineId, quantity: 1 }] });
          if (run.reserved.status === 409) return false;
          expect([run.reserved.status, run.final?.status]).toEqual([200, 200]);
          return true;
        }
        const spec = {
          refundId: id,
          lines: { [lineId]: 1 },
          paymentId: placed.payments[0]!.paymentId,
          amount: { minor: UNIT_MINOR, currency: 'AUD' },
          route: channel,
          source: { kind: 'ap21_return' as const, ref: id },
          ...(channel === 'apace' && { offerExpiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
        };
        return store.createRefund(order.orderId, spec, now, { actor: 'ap21' }).then(
          () => true,
          (error: unknown) => {
            if (error instanceof UnitsUnavailableError) return false;
            throw error;
          },
        );
      };
      const [claims, seen] = await Promise.all([Promise.all(all.map(claim)), Promise.all(Array.from({ length: 4 }, returnable))]);
      const winners = all.filter((_, i) => claims[i]);
      expect(winners).toHaveLength(Math.min(units, all.length));
      for (const left of seen) expect(left).toBeGreaterThanOrEqual(units - winners.length);
      expect(await returnable()).toBe(units - winners.length);

      // The losers try again through another channel: every unit is taken, so each is refused.
      const retry = await portal.push('refunding', {
        refundid_id: `late-${round}`,
        line_items: [{ merchant_order_ref: order.orderId, line_item_ref: lineId, quantity: 1 }],
      });
      expect(retry.status).toBe(winners.length === units ? 409 : 200);
      const booked = winners.length + (retry.status === 200 ? 1 : 0);

      // Pay: the dispatcher offers through Apace and reverses cards; customers take their offers.
      await dispatcher.processOrder(order.orderId);
      const offered = Object.values((await store.getOrder(order.orderId))!.refunds).filter((refund) => refund.state === 'offered');
      expect(offered.map((refund) => refund.id).sort()).toEqual(
        winners
          .filter((w) => w.channel === 'apace')
          .map((w) => w.id)
          .sort(),
      );
      const outcomes = await Promise.all(offered.map((refund) => sims.apace.customerAccepts(refund.refs.apaceRefundId!, CARD)));
      expect(outcomes.every((outcome) => outcome === 'paid')).toBe(true);
      for (let i = 0; i < 100; i++) {
        const refunds = Object.values((await store.getOrder(order.orderId))!.refunds);
        if (refunds.every((refund) => refund.state === 'paid' || refund.state === 'refundid_pending')) break;
        await sleep(20);
      }

      // Money that moved, counted where it moved: at most one payout per unit, each a booked refund.
      const finalOrder = (await store.getOrder(order.orderId))!;
      const payouts = new Map<string, number>();
      for (const source of [sims.apace.payouts(), sims.addonPayments.payouts(), portal.payouts()]) {
        for (const [reference, count] of source) if (reference in finalOrder.refunds) payouts.set(reference, (payouts.get(reference) ?? 0) + count);
      }
      expect([...payouts.values()].every((count) => count === 1)).toBe(true);
      expect(payouts.size).toBe(winners.length);
      expect(payouts.size).toBeLessThanOrEqual(units);
      for (const winner of winners)
        expect(finalOrder.refunds[winner.id] ?? finalOrder.refunds[`rfd-${winner.id}`]).toMatchObject({ state: 'paid', channel: winner.channel });
      expect(finalOrder.lines[lineId]).toMatchObject({ purchased: units, refunded: winners.length, reserved: booked - winners.length });
      expect(await returnable()).toBe(units - booked);
    },
  );
});

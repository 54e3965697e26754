import { readFileSync } from 'node:fs';
import { openOrder, type PaymentProvider } from '../lambdas/domain/order';
import type { Channel, Refund } from '../lambdas/domain/refund';
import type { OrderStore } from '../lambdas/store/order-store';

/**
 * The demo's flows (`npm run demo`, local/demo.ts), against a running refund-relay: card reversals
 * through Addon Payments (EPG), PayPro and Optty, an Apace instant refund the simulated customer
 * accepts, a return pushed by Ap21 and refunded on the card, a Refundid refund, and a return Ap21
 * pushes that Apace pays. The refund console's browser tests run the same flows.
 */
export interface DemoContext {
  readonly store: OrderStore;
  /** Base URL of the provider simulators. */
  readonly simulators: string;
  /** Base URL of refund-relay's API. */
  readonly api: string;
  /** The secrets file the runtime reads (Ap21 and Refundid credentials). */
  readonly secretsFile: string;
  readonly say: (line: string) => void;
  readonly stepTimeoutMs?: number;
  /** How often a step looks at the refund again. */
  readonly pollMs?: number;
}

/** An order the demo opened, with what a customer or provider would quote to find it. */
export interface DemoOrder {
  readonly title: string;
  readonly orderId: string;
  readonly refundIds: readonly string[];
  /** The provider's reference: EPG transaction, PayPro order, Optty reference or Apace refund id. */
  readonly providerRef?: string;
  readonly orderNumber?: string;
}

export interface DemoOutcome {
  readonly failures: number;
  readonly orders: readonly DemoOrder[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

function expectStatus(answer: { status: number; json: unknown }, status: number): unknown {
  if (answer.status !== status) throw new Error(`answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  return answer.json;
}

interface DemoChannel {
  readonly title: string;
  readonly provider: PaymentProvider;
  readonly route: Extract<Channel, 'apace' | 'reversal'>;
  readonly transactionId: string;
  readonly seed: readonly [prefix: string, record: Record<string, unknown>];
}

interface DemoAp21Secrets {
  readonly ap21: { username: string; password: string; pushApiKey: string };
}

export async function runDemo(ctx: DemoContext): Promise<DemoOutcome> {
  const { store, simulators, api, say } = ctx;
  const runId = Date.now().toString(36);
  const STEP_TIMEOUT_MS = ctx.stepTimeoutMs ?? 45_000;
  const orders: DemoOrder[] = [];
  let failures = 0;

  async function step<T>(description: string, action: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await action();
      say(`  ✓ ${description}`);
      return result;
    } catch (error) {
      failures++;
      say(`  ✗ ${description}: ${(error as Error).message}`);
      return undefined;
    }
  }

  const printed = new Map<string, number>();

  /** Waits until the refund satisfies `done`, printing each new timeline entry as it appears. */
  async function follow(orderId: string, refundId: string, done: (refund: Refund) => boolean): Promise<Refund> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      const shown = printed.get(refundId) ?? 0;
      const order = await store.getOrder(orderId);
      const entries = order?.timeline.filter((entry) => entry.refundId === refundId) ?? [];
      for (const entry of entries.slice(shown))
        say(`      ${entry.at.slice(11, 23)}  ${entry.actor.padEnd(10)} ${entry.event.padEnd(22)} → ${entry.to ?? ''}${entry.note ? `  (${entry.note})` : ''}`);
      printed.set(refundId, Math.max(shown, entries.length));
      const refund = order?.refunds[refundId];
      if (refund && done(refund)) return refund;
      if (Date.now() > deadline) throw new Error(`still ${refund?.state ?? 'missing'} after ${STEP_TIMEOUT_MS / 1000} s`);
      await sleep(ctx.pollMs ?? 250);
    }
  }

  async function runChannel(index: number, channel: DemoChannel): Promise<void> {
    say(`\n▸ ${channel.title}`);
    const orderId = `demo-${runId}-${index}`;
    const refundId = `${orderId}-r1`;
    const amount = { minor: 5990, currency: 'AUD' };
    await step(`the provider holds the original payment ${channel.transactionId}`, async () => {
      const { status } = await post(`${simulators}/_sim/seed/${channel.seed[0]}`, channel.seed[1]);
      if (status !== 204) throw new Error(`simulator answered ${status}`);
    });
    const created = await step(`order ${orderId} opened; refund ${refundId} reserves 1 of 2 units (AUD 59.90)`, async () => {
      const now = new Date();
      await store.putOrder(
        openOrder(
          {
            orderId,
            currency: 'AUD',
            lines: [{ lineId: '1', quantity: 2, valueMinor: 11980, sku: 'SKU-21503', title: 'Linen shirt' }],
            payments: [
              {
                paymentId: 'p1',
                capturedMinor: channel.provider === 'paypro' ? 5990 : 11980,
                provider: channel.provider,
                transactionId: channel.transactionId,
                ...(channel.route === 'apace' && { cardLastFour: '4242' }),
              },
            ],
            customer: { firstName: 'Dana', lastName: 'Demo', email: 'dana@example.com' },
          },
          now.toISOString(),
        ),
      );
      return store.createRefund(
        orderId,
        {
          refundId,
          lines: { '1': 1 },
          paymentId: 'p1',
          amount,
          route: channel.route,
          source: { kind: 'manual', ref: 'demo' },
          ...(channel.route === 'apace' && { offerExpiresAt: new Date(now.getTime() + 10 * 86_400_000).toISOString() }),
        },
        now.toISOString(),
        { actor: 'seed', note: 'npm run demo' },
      );
    });
    if (!created) return;
    orders.push({ title: channel.title, orderId, refundIds: [refundId], providerRef: channel.transactionId });

    if (channel.route === 'apace') {
      const offered = await step('the dispatcher creates the Apace offer (Apace checks our verification URL meanwhile)', () =>
        follow(orderId, refundId, (refund) => refund.state !== 'offer_pending'),
      );
      if (!offered?.refs.apaceRefundId) return;
      await step('the offer reaches the customer (Apace e-mails the link, or an offer event in .local/offer-events.jsonl)', () =>
        follow(orderId, refundId, (refund) => refund.refs.offerDelivery === 'delivered'),
      );
      await step('the customer opens the link and claims the refund at Apace', async () => {
        const { json } = await post(`${simulators}/apace/_customer/${offered.refs.apaceRefundId}/accept`, { card_last_four: '4242' });
        if ((json as { outcome?: string }).outcome !== 'paid') throw new Error(`Apace says ${JSON.stringify(json)}`);
      });
      await step('Apace’s signed webhooks mark the refund paid, then confirmed', () =>
        follow(orderId, refundId, (refund) => refund.state === 'paid' && refund.confirmedAt !== undefined),
      );
    } else {
      await step(`the dispatcher reverses the payment at ${channel.title.split(': ')[1]}`, () =>
        follow(orderId, refundId, (refund) => refund.state === 'paid' || refund.state === 'manual_review').then((refund) => {
          if (refund.state !== 'paid') throw new Error(`manual review: ${refund.reason}`);
          return refund;
        }),
      );
    }
    await step('the provider paid exactly once', async () => {
      const payouts = (await (await fetch(`${simulators}/_sim/payouts`)).json()) as Record<string, Record<string, number>>;
      const reference = channel.provider === 'paypro' && channel.route === 'reversal' ? channel.transactionId : refundId;
      const count = Object.values(payouts).reduce((sum, byReference) => sum + (byReference[reference] ?? 0), 0);
      if (count !== 1) throw new Error(`${count} payouts`);
    });
  }

  /**
   * The customer returns one shirt of `order` in Ap21, and Ap21 pushes the return to us as the Retail
   * API answers it, every element included (what an Ap21-side integration sends). Our refund's id.
   */
  async function returnAndPush(secrets: DemoAp21Secrets, order: { orderId: string; personId: string }, description: string): Promise<string | undefined> {
    const returned = await step(
      description,
      async () =>
        expectStatus(await post(`${simulators}/_sim/seed/ap21`, { return: { orderId: order.orderId, lines: [{ skuId: '21503', quantity: -1 }] } }), 200) as {
          returnId: string;
        },
    );
    if (!returned) return undefined;
    const pushed = await step("Ap21 pushes the return to POST /ap21/returns as Ap21's own <ReturnOrder> (202 once stored)", async () => {
      const ap21Auth = `Basic ${Buffer.from(`${secrets.ap21.username}:${secrets.ap21.password}`).toString('base64')}`;
      const path = `Persons/${order.personId}/Orders/${order.orderId}/Returns/${returned.returnId}?countryCode=AU`;
      const document = await fetch(`${simulators}/ap21/${path}`, { headers: { authorization: ap21Auth, accept: 'version_4.0' } });
      if (document.status !== 200) throw new Error(`Ap21 answered the return with ${document.status}`);
      expectStatus(await post(`${api}/ap21/returns`, await document.text(), { 'content-type': 'text/xml', 'x-api-key': secrets.ap21.pushApiKey }), 202);
      return true;
    });
    return pushed ? `ap21-${returned.returnId}` : undefined;
  }

  /**
   * A return Ap21 pushes in its own <ReturnOrder> shape for a card whose last four digits Ap21 keeps
   * in the payment's Reference (AP21_CARD_LAST_FOUR_FIELD=Reference locally): offered through Apace,
   * the offer e-mailed to the customer (or published as an event), claimed, paid once by Apace.
   */
  async function runAp21ToApace(): Promise<void> {
    const secrets = JSON.parse(readFileSync(ctx.secretsFile, 'utf8')) as DemoAp21Secrets;
    say('\n▸ Return pushed by Ap21, refunded instantly through Apace');
    const stan = `${Date.now() % 1_000_000_000}`.padStart(9, '7');
    const order = await step('Ap21 holds an order for a linen shirt, paid by a card whose last four digits Ap21 keeps', async () => {
      // Apace falls back to card reversal if the offer cannot reach the customer: EPG holds the payment too.
      expectStatus(await post(`${simulators}/_sim/seed/addon-payments`, { transactionId: stan, amount: { minor: 5990, currency: 'AUD' } }), 204);
      return expectStatus(
        await post(`${simulators}/_sim/seed/ap21`, {
          order: {
            email: 'robin@example.com',
            lines: [{ skuId: '21503', quantity: 1, priceMinor: 5990, productName: 'Linen shirt' }],
            payments: [{ origin: 'CreditCard', cardType: 'VISA', stan, reference: '************4242', amountMinor: 5990 }],
          },
        }),
        200,
      ) as { orderId: string; personId: string; orderNumber: string };
    });
    if (!order) return;
    const orderId = `ap21-${order.orderId}`;
    const refundId = await returnAndPush(secrets, order, 'the customer returns the shirt in Ap21');
    if (!refundId) return;
    const offered = await step("the dispatcher routes the refund to Apace (the card's last four from Ap21) and creates the offer", () =>
      follow(orderId, refundId, (refund) => refund.refs.apaceRefundId !== undefined).then((refund) => {
        if (refund.channel !== 'apace') throw new Error(`routed to ${refund.channel}`);
        return refund;
      }),
    );
    if (!offered?.refs.apaceRefundId) return;
    orders.push({
      title: 'Return pushed by Ap21, refunded through Apace',
      orderId,
      refundIds: [refundId],
      providerRef: offered.refs.apaceRefundId,
      orderNumber: order.orderNumber,
    });
    await step('the offer reaches the customer (Apace e-mails the link, or an offer event in .local/offer-events.jsonl)', () =>
      follow(orderId, refundId, (refund) => refund.refs.offerDelivery === 'delivered'),
    );
    await step('the customer opens the link and claims the refund at Apace', async () => {
      const { json } = await post(`${simulators}/apace/_customer/${offered.refs.apaceRefundId}/accept`, { card_last_four: '4242' });
      if ((json as { outcome?: string }).outcome !== 'paid') throw new Error(`Apace says ${JSON.stringify(json)}`);
    });
    await step('Apace’s signed webhooks mark the refund paid, then confirmed', () =>
      follow(orderId, refundId, (refund) => refund.state === 'paid' && refund.confirmedAt !== undefined),
    );
    await step('Apace paid exactly once, and the card was not reversed', async () => {
      const payouts = (await (await fetch(`${simulators}/_sim/payouts`)).json()) as Record<string, Record<string, number>>;
      const count = Object.values(payouts).reduce((sum, byReference) => sum + (byReference[refundId] ?? 0), 0);
      if (payouts.apace?.[refundId] !== 1 || count !== 1) throw new Error(`${JSON.stringify(payouts.apace?.[refundId] ?? 0)} Apace payouts, ${count} in all`);
    });
  }

  /**
   * A return Ap21 pushes to us (refunded by card reversal through EPG), then a Refundid refund of the
   * order's other unit, with Refundid's order fetch showing what is still returnable at each step.
   */
  async function runAp21AndRefundid(): Promise<void> {
    const secrets = JSON.parse(readFileSync(ctx.secretsFile, 'utf8')) as DemoAp21Secrets & { refundid: { bearerToken: string } };
    const stan = `ap21-${runId}`;
    say('\n▸ Return pushed by Ap21, refunded on the card');
    const order = await step('Ap21 holds order for 2 linen shirts, paid by card', async () => {
      expectStatus(await post(`${simulators}/_sim/seed/addon-payments`, { transactionId: stan, amount: { minor: 11980, currency: 'AUD' } }), 204);
      return expectStatus(
        await post(`${simulators}/_sim/seed/ap21`, {
          order: {
            email: 'dana@example.com',
            lines: [{ skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'Linen shirt' }],
            payments: [{ cardType: 'VISA', stan, amountMinor: 11980 }],
          },
        }),
        200,
      ) as { orderId: string; personId: string; orderNumber: string; lines: { lineId: string }[] };
    });
    if (!order) return;
    const orderId = `ap21-${order.orderId}`;
    const refundId = await returnAndPush(secrets, order, 'the customer returns one shirt in Ap21');
    if (!refundId) return;
    const demoOrder = {
      title: 'Return pushed by Ap21, refunded on the card, then Refundid',
      orderId,
      refundIds: [refundId],
      providerRef: stan,
      orderNumber: order.orderNumber,
    };
    orders.push(demoOrder);
    await step('the dispatcher reverses the payment at Addon Payments (EPG)', () => follow(orderId, refundId, (refund) => refund.state === 'paid'));
    await step('EPG paid exactly once', async () => {
      const payouts = (await (await fetch(`${simulators}/_sim/payouts`)).json()) as Record<string, Record<string, number>>;
      if (payouts['addon-payments']?.[refundId] !== 1) throw new Error(`${payouts['addon-payments']?.[refundId] ?? 0} payouts`);
    });

    say('\n▸ Refundid refund of the other shirt');
    const bearer = { authorization: `Bearer ${secrets.refundid.bearerToken}` };
    const returnable = async () => {
      const response = await fetch(`${api}/refundid/order?order_number=${encodeURIComponent(order.orderNumber)}&email=dana%40example.com`, { headers: bearer });
      const body = (await response.json()) as { line_items?: { returnable_quantity: number }[] };
      if (response.status !== 200) throw new Error(`order fetch answered ${response.status}: ${JSON.stringify(body)}`);
      return body.line_items?.[0]?.returnable_quantity;
    };
    await step('Refundid fetches the order: 1 shirt still returnable', async () => {
      const units = await returnable();
      if (units !== 1) throw new Error(`returnable_quantity ${units}`);
    });
    const rma = {
      refundid_id: `demo-${runId}`,
      merchant_rma_ref: `RMA-${runId}`,
      line_items: [{ merchant_order_ref: orderId, line_item_ref: order.lines[0]!.lineId, quantity: 1 }],
    };
    await step('Refundid pushes "refunding": the unit is reserved', async () => {
      expectStatus(await post(`${api}/refundid/refund`, { ...rma, status: 'refunding' }, bearer), 200);
      if ((await returnable()) !== 0) throw new Error('the unit is still returnable');
    });
    await step('Refundid pushes "refundid": paid via Refundid', async () => {
      const answer = expectStatus(await post(`${api}/refundid/refund`, { ...rma, status: 'refundid' }, bearer), 200) as { state: string };
      if (answer.state !== 'paid') throw new Error(`state ${answer.state}`);
    });
    await step('a second Refundid RMA for the same order finds nothing left: 409', async () => {
      expectStatus(
        await post(
          `${api}/refundid/refund`,
          { ...rma, refundid_id: `demo-${runId}-again`, merchant_rma_ref: `RMA-${runId}-again`, status: 'refunding' },
          bearer,
        ),
        409,
      );
    });
  }

  const payproOrderId = Date.now() % 1e9;
  const channels: DemoChannel[] = [
    {
      title: 'Card reversal: Addon Payments (EPG)',
      provider: 'addon_payments',
      route: 'reversal',
      transactionId: `epg-${runId}`,
      seed: ['addon-payments', { transactionId: `epg-${runId}`, amount: { minor: 11980, currency: 'AUD' } }],
    },
    {
      title: 'Card reversal: PayPro Global',
      provider: 'paypro',
      route: 'reversal',
      transactionId: String(payproOrderId),
      seed: ['paypro', { orderId: payproOrderId, email: 'dana@example.com', amount: { minor: 5990, currency: 'AUD' } }],
    },
    {
      title: 'Card reversal: Optty',
      provider: 'optty',
      route: 'reversal',
      transactionId: `optty-${runId}`,
      seed: ['optty', { reference: `optty-${runId}`, captured: { minor: 11980, currency: 'AUD' } }],
    },
    {
      title: 'Apace instant refund',
      provider: 'addon_payments',
      route: 'apace',
      transactionId: `apace-${runId}`,
      seed: ['addon-payments', { transactionId: `apace-${runId}`, amount: { minor: 11980, currency: 'AUD' } }],
    },
  ];
  for (const [index, channel] of channels.entries()) await runChannel(index, channel);
  await runAp21AndRefundid();
  await runAp21ToApace();
  return { failures, orders };
}

import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import type { ProviderSimulators } from '../../local/simulators';
import type { TestStack } from '../support/stack';

// The logger reads its level when its module loads, as in Lambda: load everything at DEBUG.
process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
jest.resetModules();
/* eslint-disable @typescript-eslint/no-require-imports */
const { openOrder } = require('../../lambdas/domain/order') as typeof import('../../lambdas/domain/order');
const { createDispatcher } = require('../../lambdas/functions/dispatch-runtime') as typeof import('../../lambdas/functions/dispatch-runtime');
const { startProviderSimulators } = require('../../local/simulators') as typeof import('../../local/simulators');
const { apaceUrls, apaceWebhook, offeredRefund, postWebhook } = require('../support/fixtures') as typeof import('../support/fixtures');
const { startTestStack } = require('../support/stack') as typeof import('../support/stack');
/* eslint-enable @typescript-eslint/no-require-imports */

let stack: TestStack;
let sims: ProviderSimulators;
const lines: string[] = [];
let restore: () => void;

const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.customer@example.com';

beforeAll(async () => {
  stack = await startTestStack();
  sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 20, apaceWebhookRetryGapMs: 50 });
  Object.assign(process.env, sims.env);
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  const errors = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  restore = () => {
    spy.mockRestore();
    errors.mockRestore();
  };
});
afterAll(async () => {
  restore();
  await sims.close();
  await stack.close();
});

/** The values of every secret-bearing key (passwords, keys, tokens), however deep; ids and user names are not secret. */
function secretValues(value: unknown, secret = false): string[] {
  if (typeof value === 'string') return secret ? [value] : [];
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, inner]) => secretValues(inner, secret || /secret|password|key|token/i.test(key)));
  }
  return [];
}

describe('logs of complete flows', () => {
  it('contain no secret, no full card number and no unmasked customer e-mail', async () => {
    const apace = stack.secrets.apace as ApaceSecret;
    const { store } = stack.runtime;

    // An Apace refund paid through the real callbacks, with a customer e-mail on the order.
    const { orderId, refundId } = await offeredRefund(store, 'logs-apace');
    const { verificationUrl, notificationUrl } = apaceUrls(stack.url, apace, orderId, refundId);
    // A caller's correlation id is echoed into every log line of its request: here, a card number.
    await fetch(verificationUrl, { headers: { 'x-correlation-id': CARD.replace(/ /g, '') } });
    await postWebhook(notificationUrl, apaceWebhook(orderId, 'pending', { customer_email: EMAIL, refund_card: CARD }), apace.apiSecret);
    await postWebhook(notificationUrl, apaceWebhook(orderId, 'processed'), apace.apiSecret);
    // Forgeries and bad input carrying card numbers and e-mails: rejected and logged as such.
    await fetch(`${verificationUrl.split('?')[0]}?auth_token=${encodeURIComponent(`${CARD}.${EMAIL}`)}`);
    await postWebhook(notificationUrl, JSON.stringify({ order_id: EMAIL, refund_card: CARD }), 'wrong-secret');
    await postWebhook(notificationUrl, apaceWebhook('someone-else', 'pending', { note: `${EMAIL} ${CARD}` }), apace.apiSecret);

    // A card reversal through EPG, and one that goes to manual review with the provider's words in it.
    sims.addonPayments.seed({ transactionId: 'logs-tx', amount: { minor: 5000, currency: 'AUD' } });
    for (const [id, transactionId] of [
      ['logs-epg', 'logs-tx'],
      ['logs-review', 'unknown-tx'],
    ] as const) {
      await store.putOrder(
        openOrder(
          {
            orderId: id,
            currency: 'AUD',
            customer: { email: EMAIL },
            lines: [{ lineId: '1', quantity: 1, valueMinor: 5000 }],
            payments: [{ paymentId: 'p1', capturedMinor: 5000, provider: 'addon_payments', transactionId }],
          },
          new Date().toISOString(),
        ),
      );
      await store.createRefund(
        id,
        {
          refundId: `${id}-r1`,
          lines: { '1': 1 },
          paymentId: 'p1',
          amount: { minor: 5000, currency: 'AUD' },
          route: 'reversal',
          source: { kind: 'manual', ref: id },
        },
        new Date().toISOString(),
        { actor: 'seed' },
      );
    }
    const dispatcher = createDispatcher(stack.runtime);
    await dispatcher.processOrder('logs-epg');
    await dispatcher.processOrder('logs-review');
    expect((await store.getOrder('logs-epg'))!.refunds['logs-epg-r1']!.state).toBe('paid');
    expect((await store.getOrder('logs-review'))!.refunds['logs-review-r1']!.state).toBe('manual_review');

    const text = lines.join('');
    // The flows did log: requests handled, rejections and the manual review.
    expect(text).toContain('"message":"request handled"');
    expect(text).toContain('"message":"request rejected"');
    expect(text).toContain('"message":"refund needs manual review"');
    const secrets = secretValues(stack.secrets);
    expect(secrets.length).toBeGreaterThan(12);
    for (const secret of secrets) expect(text.includes(secret) ? secret : 'absent').toBe('absent');
    expect(text).not.toMatch(/4111[ -]?1111[ -]?1111[ -]?1111/);
    expect(text).toContain('"correlation_id":"****1111"');
    expect(text).not.toMatch(/[A-Za-z0-9._%+-]{2,}@example\.com/);
    expect(text).not.toContain('"stack"');
  }, 30_000);
});

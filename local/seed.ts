import { randomUUID } from 'node:crypto';
import { openOrder } from '../lambdas/domain/order';
import { runtime } from '../lambdas/functions/runtime';
import { callbackUrls } from '../lambdas/providers/apace/callback-token';
import { apaceSecretSchema } from '../lambdas/providers/apace/schemas';
import { signApaceBody, APACE_SIGNATURE_HEADER } from '../lambdas/providers/apace/signature';
import { applyLocalEnvironment, localSettings } from './environment';

/**
 * `npm run seed`: opens a demo order in the running local stack and puts one refund into `offered`
 * on the Apace route, then prints the curl commands Apace would make (verification, then the
 * signed `pending` and `processed` webhooks). Stands in for the Apace connector until it lands.
 */
async function main(): Promise<void> {
  applyLocalEnvironment(localSettings());
  const { store, secret, config, claimWindowMs } = runtime();
  const apace = await secret('apace', apaceSecretSchema).get();
  const now = new Date();
  const orderId = `demo-${now.getTime().toString(36)}`;
  const refundId = `${orderId}-r1`;
  const offerExpiresAt = new Date(now.getTime() + 10 * 24 * 3600 * 1000);

  const order = openOrder(
    {
      orderId,
      currency: 'AUD',
      lines: [{ lineId: '1', quantity: 2, valueMinor: 11980, sku: 'SKU-21503', title: 'Linen shirt' }],
      payments: [{ paymentId: 'pay-1', capturedMinor: 11980, provider: 'addon_payments', transactionId: '7831830', cardLastFour: '7001' }],
      origin: { system: 'seed' },
    },
    now.toISOString(),
  );
  await store.putOrder(order).catch((error: Error) => {
    throw new Error(`cannot reach the local DynamoDB at ${config.DYNAMODB_ENDPOINT} (${error.name}); is \`npm start\` running?`);
  });
  await store.createRefund(
    orderId,
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'pay-1',
      amount: { minor: 5990, currency: 'AUD' },
      route: 'apace',
      offerExpiresAt: offerExpiresAt.toISOString(),
      source: { kind: 'manual', ref: 'seed' },
    },
    now.toISOString(),
    { actor: 'seed', note: 'demo refund' },
  );
  const apaceRefundId = randomUUID();
  await store.applyEvent(
    orderId,
    refundId,
    'offer_created',
    { now: now.toISOString(), claimWindowMs, refs: { apaceRefundId } },
    { actor: 'seed', note: 'stands in for Apace create' },
  );

  const urls = callbackUrls(config.PUBLIC_BASE_URL, apace, orderId, refundId, offerExpiresAt.getTime() + config.APACE_CALLBACK_GRACE_SECONDS * 1000);
  const webhook = (status: 'pending' | 'processed') =>
    JSON.stringify({
      refund_success: status === 'processed',
      refund_status: status,
      refund_id: apaceRefundId,
      date_created: now.toISOString(),
      datetime_refund_sent: status === 'processed' ? new Date().toISOString() : null,
      order_id: orderId,
      item_ids: ['1'],
      refund_card: '**** **** ***** 7001',
      network: 'VISA',
    });
  const post = (status: 'pending' | 'processed') => {
    const body = webhook(status);
    return `curl -s -X POST '${urls.notificationUrl}' -H 'content-type: application/json' -H '${APACE_SIGNATURE_HEADER}: ${signApaceBody(apace.apiSecret, body)}' --data '${body}'`;
  };
  process.stdout.write(
    [
      `Seeded order ${orderId}: refund ${refundId} (AUD 59.90, 1 of 2 units) is offered through Apace.`,
      '',
      '1. Apace asks whether it may pay (expect {"allow_refund":true}):',
      `   curl -s '${urls.verificationUrl}'`,
      '',
      '2. Apace reports the payout is under way; the refund becomes paid (expect {"received":true}):',
      `   ${post('pending')}`,
      '',
      '3. Apace confirms the payout; sending it twice changes nothing:',
      `   ${post('processed')}`,
      '',
      '4. Ask again: the refund is paid, so Apace must not pay it twice (expect {"allow_refund":false}):',
      `   curl -s '${urls.verificationUrl}'`,
      '',
    ].join('\n'),
  );
}

main().catch((error: Error) => {
  process.stderr.write(`seed failed: ${error.message}\n`);
  process.exit(1);
});

import { randomUUID } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { createDocumentClient } from '../lambdas/commons/clients/dynamodb';
import { openOrder } from '../lambdas/domain/order';
import type { Runtime } from '../lambdas/functions/runtime';
import { callbackUrls } from '../lambdas/providers/apace/callback-token';
import { apaceSecretSchema } from '../lambdas/providers/apace/schemas';
import { TABLE } from '../lambdas/store/table';
import { percentile, withStdoutDiscarded, type CountedDynalite, type FakeSecretsManager } from './support';

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

export interface VerificationResult {
  readonly roundtrips: number;
  readonly warmSecretCalls: number;
  readonly handlerP50: number;
  readonly handlerP99: number;
  readonly bareP50: number;
  readonly bareP99: number;
  readonly samples: number;
}

const ORDERS = 40;
const WARM_UP = 300;
const COUNTED = 200;
const ROUNDS = 200;
const BATCH = 10;

function context(): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'apace-verification',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:ap-southeast-2:000000000000:function:apace-verification',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/apace-verification',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 10_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** A GET as API Gateway's REST proxy integration delivers it (the shape local/server.ts builds). */
function verificationEvent(url: URL, orderId: string, refundId: string): APIGatewayProxyEvent {
  const query = Object.fromEntries(url.searchParams);
  const resource = '/apace/orders/{orderId}/refunds/{refundId}/verification';
  const headers = { Host: url.host, 'User-Agent': 'Apace-Verification/1.0', Accept: 'application/json' };
  return {
    resource,
    path: url.pathname,
    httpMethod: 'GET',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: Object.fromEntries(Object.entries(query).map(([name, value]) => [name, [value]])),
    pathParameters: { orderId, refundId },
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      authorizer: null,
      httpMethod: 'GET',
      path: url.pathname,
      protocol: 'HTTP/1.1',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'apace-verification',
      resourcePath: resource,
      stage: 'bench',
      identity: { sourceIp: '203.0.113.50', userAgent: 'Apace-Verification/1.0' } as APIGatewayProxyEvent['requestContext']['identity'],
    },
  };
}

/** Orders with one refund offered through Apace, as the dispatcher leaves them. */
async function seedOfferedRefunds(rt: Runtime, prefix: string): Promise<{ orderId: string; refundId: string }[]> {
  const now = new Date().toISOString();
  const offerExpiresAt = new Date(Date.now() + 10 * 24 * 3600 * 1000).toISOString();
  const seeded: { orderId: string; refundId: string }[] = [];
  for (let i = 0; i < ORDERS; i++) {
    const orderId = `${prefix}-${i}`;
    const refundId = `${orderId}-r1`;
    await rt.store.putOrder(
      openOrder(
        {
          orderId,
          currency: 'AUD',
          lines: [
            { lineId: '1', quantity: 2, valueMinor: 11980, sku: 'SKU-21503', title: 'Linen shirt' },
            { lineId: '2', quantity: 1, valueMinor: 4500, sku: 'SKU-880', title: 'Belt' },
          ],
          payments: [{ paymentId: 'pay-1', capturedMinor: 16480, provider: 'addon_payments', transactionId: `tx-${i}`, cardLastFour: '7001' }],
          origin: { system: 'bench' },
        },
        now,
      ),
    );
    await rt.store.createRefund(
      orderId,
      {
        refundId,
        lines: { '1': 1 },
        paymentId: 'pay-1',
        amount: { minor: 5990, currency: 'AUD' },
        route: 'apace',
        offerExpiresAt,
        source: { kind: 'ap21_return', ref: refundId },
      },
      now,
      { actor: 'ap21' },
    );
    await rt.store.applyEvent(
      orderId,
      refundId,
      'offer_created',
      { now, claimWindowMs: rt.claimWindowMs, refs: { apaceRefundId: randomUUID() } },
      { actor: 'dispatcher' },
    );
    seeded.push({ orderId, refundId });
  }
  return seeded;
}

/**
 * The Apace verification handler, in process, against dynalite: DynamoDB round trips and Secrets
 * Manager calls counted at the wire, and its latency beside a bare conditional UpdateItem on an
 * order item of the same shape, sampled in alternating batches so machine drift hits both alike.
 */
export async function benchVerification(rt: Runtime, dynamo: CountedDynalite, secretsManager: FakeSecretsManager): Promise<VerificationResult> {
  // Loaded here, after the bench has set the environment, as Lambda's init phase would load it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { handler } = require('../lambdas/functions/apace-verification') as { handler: Handler };
  const apace = await rt.secret('apace', apaceSecretSchema).get();
  const targets = await seedOfferedRefunds(rt, 'bench-verify');
  const bareTargets = await seedOfferedRefunds(rt, 'bench-bare');
  const events = targets.map(({ orderId, refundId }) =>
    verificationEvent(
      new URL(callbackUrls(rt.config.PUBLIC_BASE_URL, apace, orderId, refundId, Date.now() + 30 * 24 * 3600 * 1000).verificationUrl),
      orderId,
      refundId,
    ),
  );
  const bareClient = createDocumentClient(rt.config.DYNAMODB_ENDPOINT);

  const verify = async (i: number) => {
    const result = await handler(events[i % events.length]!, context());
    if (result.statusCode !== 200 || !result.body.includes('"allow_refund":true')) throw new Error(`verification answered ${result.statusCode} ${result.body}`);
  };
  const bareUpdate = async (i: number) => {
    const { orderId, refundId } = bareTargets[i % bareTargets.length]!;
    await bareClient.send(
      new UpdateCommand({
        TableName: rt.config.TABLE_NAME,
        Key: { [TABLE.partitionKey]: `ORDER#${orderId}`, [TABLE.sortKey]: 'ORDER' },
        UpdateExpression: 'SET #refunds.#refund.#at = :now',
        ConditionExpression: 'attribute_exists(#refunds.#refund)',
        ExpressionAttributeNames: { '#refunds': 'refunds', '#refund': refundId, '#at': 'lastVerifiedAt' },
        ExpressionAttributeValues: { ':now': new Date().toISOString() },
      }),
    );
  };
  const timed = async (work: (i: number) => Promise<void>, i: number, into: number[]) => {
    const started = performance.now();
    await work(i);
    into.push(performance.now() - started);
  };

  return withStdoutDiscarded(async () => {
    for (let i = 0; i < WARM_UP; i++) {
      await verify(i);
      await bareUpdate(i);
    }
    const secretCallsWhenWarm = secretsManager.calls();
    dynamo.reset();
    for (let i = 0; i < COUNTED; i++) await verify(i);
    const roundtrips = dynamo.total() / COUNTED;

    const handlerSamples: number[] = [];
    const bareSamples: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always runs right after a garbage collection.
      const order =
        round % 2 === 0 ? ([verify, handlerSamples, bareUpdate, bareSamples] as const) : ([bareUpdate, bareSamples, verify, handlerSamples] as const);
      for (let i = 0; i < BATCH; i++) await timed(order[0], round * BATCH + i, order[1]);
      for (let i = 0; i < BATCH; i++) await timed(order[2], round * BATCH + i, order[3]);
    }
    bareClient.destroy();
    return {
      roundtrips,
      warmSecretCalls: secretsManager.calls() - secretCallsWhenWarm,
      handlerP50: percentile(handlerSamples, 50),
      handlerP99: percentile(handlerSamples, 99),
      bareP50: percentile(bareSamples, 50),
      bareP99: percentile(bareSamples, 99),
      samples: handlerSamples.length,
    };
  });
}

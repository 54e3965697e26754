import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { remainingMs, withDeadline } from '../../lambdas/commons/deadline';
import { INBOUND_DEADLINE_MS, httpHandler } from '../../lambdas/commons/http';
import { ProviderCallError, callProvider } from '../../lambdas/providers/outbound';

/** A provider that takes every request and never answers. */
let server: Server;
let url: string;
let received = 0;
beforeAll(async () => {
  server = createServer(() => {
    received++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/refunds`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  received = 0;
});

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as ProviderCallError,
  );

describe('a provider call inside an invocation with a deadline', () => {
  it('waits at most until the deadline (less the time to record the outcome), not its own longer timeout', async () => {
    const error = await rejection(withDeadline(Date.now() + 1_500, () => callProvider('epg', { method: 'POST', url, timeoutMs: 60_000 })));
    expect(error).toBeInstanceOf(ProviderCallError);
    expect(error).toMatchObject({ kind: 'timeout', ambiguous: true });
    expect(error!.message).toMatch(/^epg did not answer before the invocation's deadline \(\d+ ms\)$/);
    expect(received).toBe(1);
  });

  it('is not sent at all when too little time is left, and says so (nothing can have happened at the provider)', async () => {
    const error = await rejection(withDeadline(Date.now() + 500, () => callProvider('epg', { method: 'POST', url, timeoutMs: 60_000 })));
    expect(error).toMatchObject({ kind: 'timeout', ambiguous: false, message: 'no time left in this invocation to call epg; not sent' });
    expect(received).toBe(0);
  });

  it('CONTROL: without a deadline, the call waits for its own timeout', async () => {
    const error = await rejection(callProvider('epg', { method: 'POST', url, timeoutMs: 300 }));
    expect(error).toMatchObject({ kind: 'timeout', ambiguous: true, message: 'epg did not answer within 300 ms' });
    expect(remainingMs()).toBe(Number.POSITIVE_INFINITY);
  });

  it('keeps the sooner of two nested deadlines', async () => {
    const now = Date.now();
    const inner = await withDeadline(now + 1_000, () => withDeadline(now + 60_000, async () => remainingMs(now)));
    expect(inner).toBe(1_000);
  });
});

describe('an inbound handler', () => {
  const event = {
    httpMethod: 'GET',
    path: '/probe',
    headers: {},
    requestContext: { requestId: 'r1', identity: { sourceIp: '127.0.0.1' } },
  } as unknown as APIGatewayProxyEvent;
  const context = (remaining: number) => ({ functionName: 'probe', awsRequestId: 'r1', getRemainingTimeInMillis: () => remaining }) as unknown as Context;
  // The route reports the deadline its provider calls would run under.
  const probe = httpHandler({ name: 'probe', maxBodyBytes: 0 }, async () => ({ status: 200, body: { remainingMs: remainingMs() } }));
  const answered = async (remaining: number) => (JSON.parse((await probe(event, context(remaining))).body) as { remainingMs: number }).remainingMs;

  it("works under a deadline that leaves API Gateway's 29 s room for a cold start and the answer", async () => {
    const left = await answered(60_000);
    expect(left).toBeLessThanOrEqual(INBOUND_DEADLINE_MS);
    expect(left).toBeGreaterThan(INBOUND_DEADLINE_MS - 5_000);
  });

  it("works under the Lambda's own timeout when that comes sooner", async () => {
    expect(await answered(3_000)).toBeLessThanOrEqual(2_500);
  });
});

import fc from 'fast-check';
import { openOrder } from '../../lambdas/domain/order';
import { ipnHash, ipnSignature } from '../../lambdas/providers/paypro/ipn';
import type { PayProSecret } from '../../lambdas/providers/paypro/schemas';
import { openAp21Order, startAp21ForStack, type Ap21ForStack } from '../support/ap21-orders';
import { tableSnapshot } from '../support/fixtures';
import { requestFrom, type RawAnswer } from '../support/source-address';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * Hostile input for every route of this change, generated: each request is broken in at least one
 * way the route must notice (auth, media type, encoding, size, shape, types, ranges), aimed at
 * real orders and refunds so validation is what stands between it and a write. Every answer must
 * be a 4xx, and the table must be byte-for-byte what it was.
 */
let stack: TestStack;
let ap21: Ap21ForStack;
let before: unknown[];
let target: { orderId: string; lineId: string; orderNumber: string; refundId: string; payProOrderId: string };

const BATCH = 10;
const RUNS = 70;

beforeAll(async () => {
  stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1', PAYPRO_IPN_SOURCE_IPS: '127.0.0.1' });
  ap21 = await startAp21ForStack(stack);
  Object.assign(process.env, ap21.env);
  const { ap21: placed, order } = await openAp21Order(stack.runtime.store, ap21.sim, {
    email: 'alice@example.com',
    lines: [{ skuId: '21503', quantity: 2, priceMinor: 5990 }],
  });
  const refundId = 'pp-fuzz-r1';
  const now = new Date().toISOString();
  await stack.runtime.store.putOrder(
    openOrder(
      {
        orderId: 'pp-fuzz',
        currency: 'AUD',
        lines: [{ lineId: '1', quantity: 1, valueMinor: 4990 }],
        payments: [{ paymentId: 'p1', capturedMinor: 4990, provider: 'paypro', transactionId: '700001' }],
      },
      now,
    ),
  );
  await stack.runtime.store.createRefund(
    'pp-fuzz',
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'p1',
      amount: { minor: 4990, currency: 'AUD' },
      route: 'reversal',
      source: { kind: 'ap21_return', ref: refundId },
    },
    now,
    { actor: 'ap21' },
  );
  await stack.runtime.store.linkReference('refund', refundId, { orderId: 'pp-fuzz' }, now);
  target = { orderId: order.orderId, lineId: placed.lines[0]!.lineId, orderNumber: placed.orderNumber, refundId, payProOrderId: '700001' };
  before = await tableSnapshot(stack.dynamo.endpoint);
});
afterAll(async () => {
  await ap21.host.close();
  await stack.close();
});

interface Hostile {
  readonly what: string;
  readonly path: string;
  readonly method?: 'GET' | 'POST';
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

const INVALID_UTF8 = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d]);
const bearer = () => ({ authorization: `Bearer ${String(stack.secrets.refundid.bearerToken)}` });

/** Values that are not what a field wants, for any field. */
const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.constant([]),
  fc.constant({}),
  fc.constantFrom('', ' ', 'has space', 'é', 'x'.repeat(256), '\u0000', '-1'),
);

/** A part of a JSON route's request broken one way or another; `body` is the valid JSON payload. */
function brokenJson(
  path: string,
  headers: () => Record<string, string>,
  valid: () => Record<string, unknown>,
  shapeBreakers: fc.Arbitrary<(body: Record<string, unknown>) => string>,
): fc.Arbitrary<Hostile> {
  const json = (body: string | Buffer, extra: Record<string, string> = {}) => ({
    path,
    method: 'POST' as const,
    headers: { ...headers(), 'content-type': 'application/json', ...extra },
    body,
  });
  return fc.oneof(
    shapeBreakers.map((breakIt) => ({ what: 'shape', ...json(breakIt(valid())) })),
    fc
      .constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '')
      .map((type) => ({ what: `type ${type}`, ...json(JSON.stringify(valid()), { 'content-type': type }) })),
    fc.constant({ what: 'invalid UTF-8', ...json(INVALID_UTF8) }),
    fc.nat({ max: 40 }).map((cut) => ({ what: 'truncated JSON', ...json(JSON.stringify(valid()).slice(0, cut)) })),
    fc.constantFrom('[]', '42', '"text"', 'null', 'true').map((body) => ({ what: `JSON ${body}`, ...json(body) })),
    fc.constant({ what: 'oversized', ...json(JSON.stringify({ ...valid(), padding: 'x'.repeat(70 * 1024) })) }),
  );
}

/** Drops one of `required`, or sets it to a wrong value. */
const breakField = (required: readonly string[], wrong: fc.Arbitrary<unknown> = wrongValue) =>
  fc.record({ field: fc.constantFrom(...required), drop: fc.boolean(), value: wrong }).map(({ field, drop, value }) => (body: Record<string, unknown>) => {
    const copy: Record<string, unknown> = { ...body };
    if (drop) delete copy[field];
    else copy[field] = value;
    return JSON.stringify(copy);
  });

function rmaRequests(): fc.Arbitrary<Hostile> {
  const line = () => ({ merchant_order_ref: target.orderId, line_item_ref: target.lineId, quantity: 1 });
  const valid = () => ({ refundid_id: 'rid-fuzz', merchant_rma_ref: 'RMA-FUZZ', status: 'refunding', line_items: [line()] });
  // Refundid's ids may come as whole numbers (read as text), so a whole number is no wrong value here.
  const notAnId = wrongValue.filter((value) => !(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0));
  const breakLine = fc
    .record({ field: fc.constantFrom('merchant_order_ref', 'line_item_ref', 'quantity'), drop: fc.boolean(), value: notAnId })
    .map(({ field, drop, value }) => (body: Record<string, unknown>) => {
      const item: Record<string, unknown> = { ...line() };
      if (drop) delete item[field];
      else item[field] = value;
      return JSON.stringify({ ...body, line_items: [item] });
    });
  const shape = fc.oneof(
    breakField(['refundid_id', 'status'], notAnId),
    breakLine,
    fc
      .constantFrom(0, -1, 1.5, 100_001, 1e21)
      .map((quantity) => (body: Record<string, unknown>) => JSON.stringify({ ...body, line_items: [{ ...line(), quantity }] })),
    fc.constantFrom('refunded', 'REFUNDING', 'paid', '').map((status) => (body: Record<string, unknown>) => JSON.stringify({ ...body, status })),
    fc
      .constantFrom<unknown>([], {}, 'line', Array.from({ length: 31 }, line))
      .map((items) => (body: Record<string, unknown>) => JSON.stringify({ ...body, line_items: items })),
    // A line's price is never read (the refund is priced from the ledger), so no price refuses a push.
    fc
      .constantFrom('has space', 'é', 'x'.repeat(256), 'tab\there')
      .map((ref) => (body: Record<string, unknown>) => JSON.stringify({ ...body, merchant_rma_ref: ref })),
    fc.constant((body: Record<string, unknown>) => JSON.stringify({ ...body, line_items: [{ ...line(), merchant_order_ref: 'ap21-0' }] })),
  );
  const unauthenticated = fc
    .constantFrom<Record<string, string>>({}, { authorization: 'Bearer wrong-token-0123456789abcdefghijklmnopqrstu' }, { authorization: 'Basic YTpi' })
    .map((headers) => ({
      what: `auth ${JSON.stringify(headers)}`,
      path: '/refundid/refund',
      method: 'POST' as const,
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(valid()),
    }));
  return fc.oneof({ weight: 5, arbitrary: brokenJson('/refundid/refund', bearer, valid, shape) }, { weight: 1, arbitrary: unauthenticated });
}

function orderFetchRequests(): fc.Arbitrary<Hostile> {
  const valid = () => ({ order_number: target.orderNumber, email: 'alice@example.com', shop: 'demo' });
  const get = (query: string, extra: Partial<Hostile> = {}) => ({ path: `/refundid/order?${query}`, method: 'GET' as const, headers: bearer(), ...extra });
  return fc.oneof(
    fc
      .record({
        field: fc.constantFrom('order_number', 'email'),
        value: fc.option(fc.constantFrom('', 'has space', 'é', 'x'.repeat(256), 'no-at-sign', 'a@b\u0001c', `${'x'.repeat(320)}@example.com`), {
          nil: undefined,
        }),
      })
      .map(({ field, value }) => {
        const query: Record<string, string> = valid();
        if (value === undefined) delete query[field];
        else query[field] = value;
        return { what: `${field}=${value}`, ...get(new URLSearchParams(query).toString()) };
      }),
    fc
      .constantFrom('order_number', 'email', 'merchant_order_ref', 'key')
      .map((name) => ({ what: `${name} twice`, ...get(`${new URLSearchParams(valid()).toString()}&${name}=a&${name}=b`) })),
    fc.constant({
      what: 'too many parameters',
      ...get(`${new URLSearchParams(valid()).toString()}&${Array.from({ length: 20 }, (_, i) => `p${i}=1`).join('&')}`),
    }),
    fc.constant({ what: 'a body', ...get(new URLSearchParams(valid()).toString(), { method: 'POST' as never }) }),
    fc
      .constantFrom<Record<string, string>>({}, { authorization: 'Bearer nope-nope-nope-nope-nope-nope-nope-nope' })
      .map((headers) => ({ what: 'no auth', path: `/refundid/order?${new URLSearchParams(valid()).toString()}`, method: 'GET' as const, headers })),
    fc.constant({
      what: 'GET with a body',
      ...get(new URLSearchParams(valid()).toString(), { body: '{}', headers: { ...bearer(), 'content-type': 'application/json', 'content-length': '2' } }),
    }),
  );
}

function ipnRequests(): fc.Arbitrary<Hostile> {
  const keys = () => stack.secrets.paypro as unknown as PayProSecret;
  const fields = (): Record<string, string> => {
    const signed = {
      ORDER_ID: target.payProOrderId,
      ORDER_STATUS: 'Refunded',
      ORDER_TOTAL_AMOUNT: '49.90',
      CUSTOMER_EMAIL: 'c@example.com',
      TEST_MODE: '0' as const,
      IPN_TYPE_NAME: 'OrderRefunded',
    };
    return {
      ...signed,
      ORDER_CURRENCY_CODE: 'AUD',
      IPN_TYPE_ID: '2',
      ACTION_REASON: `Customer return (refund ${target.refundId})`,
      HASH: ipnHash(signed.ORDER_ID, keys().ipnSecretKey),
      SIGNATURE: ipnSignature(signed, keys().ipnValidationKey),
    };
  };
  const form = (body: string | Buffer, type = 'application/x-www-form-urlencoded') => ({
    path: '/providers/paypro/ipn',
    method: 'POST' as const,
    headers: { 'content-type': type },
    body,
  });
  const REQUIRED = [
    'ORDER_ID',
    'ORDER_STATUS',
    'ORDER_TOTAL_AMOUNT',
    'ORDER_CURRENCY_CODE',
    'IPN_TYPE_ID',
    'IPN_TYPE_NAME',
    'TEST_MODE',
    'CUSTOMER_EMAIL',
    'HASH',
    'SIGNATURE',
  ];
  const SIGNED = ['ORDER_ID', 'ORDER_STATUS', 'ORDER_TOTAL_AMOUNT', 'CUSTOMER_EMAIL', 'IPN_TYPE_NAME'];
  return fc.oneof(
    fc.constantFrom(...REQUIRED).map((field) => {
      const values = fields();
      delete values[field];
      return { what: `no ${field}`, ...form(new URLSearchParams(values).toString()) };
    }),
    fc
      .record({ field: fc.constantFrom(...SIGNED), value: fc.constantFrom('700002', 'Processed', '0.00', 'x@example.com', 'OrderCharged', '1') })
      .map(({ field, value }) => ({
        what: `${field}=${value} after signing`,
        ...form(new URLSearchParams({ ...fields(), [field]: value }).toString()),
      })),
    fc
      .record({ field: fc.constantFrom('HASH', 'SIGNATURE'), value: fc.constantFrom('0'.repeat(32), 'f'.repeat(64), 'not-hex', '', 'A'.repeat(31)) })
      .map(({ field, value }) => ({ what: `${field}=${value}`, ...form(new URLSearchParams({ ...fields(), [field]: value }).toString()) })),
    fc
      .record({
        field: fc.constantFrom('ORDER_ID', 'ORDER_TOTAL_AMOUNT', 'ORDER_CURRENCY_CODE', 'IPN_TYPE_ID', 'TEST_MODE'),
        value: fc.constantFrom('abc', '-', '1e5', '', 'aud', '99999999999999999'),
      })
      .map(({ field, value }) => ({ what: `${field}=${value}`, ...form(new URLSearchParams({ ...fields(), [field]: value }).toString()) })),
    fc
      .constantFrom('ORDER_ID', 'HASH', 'ACTION_REASON')
      .map((field) => ({ what: `${field} twice`, ...form(`${new URLSearchParams(fields()).toString()}&${field}=${encodeURIComponent(fields()[field]!)}`) })),
    fc.constantFrom('application/json', 'text/plain', '').map((type) => ({ what: `type ${type}`, ...form(new URLSearchParams(fields()).toString(), type) })),
    fc.constant({ what: 'invalid UTF-8', ...form(Buffer.concat([Buffer.from(`${new URLSearchParams(fields()).toString()}&X=`), Buffer.from([0xc3, 0x28])])) }),
    fc.constant({ what: 'oversized', ...form(`${new URLSearchParams(fields()).toString()}&PADDING=${'x'.repeat(40 * 1024)}`) }),
    fc.constant({ what: 'test mode', ...form(new URLSearchParams({ ...fields(), TEST_MODE: '1' }).toString()) }),
  );
}

function opttyRequests(): fc.Arbitrary<Hostile> {
  const token = () => String(stack.secrets.optty.notificationSecret);
  const valid = () => ({ event: 'REFUND_CALLBACK', status: 'SUCCESSFUL', transactionId: 'tx', refundReference: target.refundId });
  const withToken = () => `/providers/optty/notifications?token=${token()}`;
  const shape = fc.oneof(
    breakField(['event', 'status']),
    fc
      .record({
        field: fc.constantFrom('transactionId', 'refundReference', 'merchantReference', 'orderReference'),
        value: fc.constantFrom<unknown>(42, {}, [], true, 'x'.repeat(257)),
      })
      .map(
        ({ field, value }) =>
          (body: Record<string, unknown>) =>
            JSON.stringify({ ...body, [field]: value }),
      ),
    fc.constantFrom('x'.repeat(65), '').map((event) => (body: Record<string, unknown>) => JSON.stringify({ ...body, event })),
  );
  const badToken = fc
    .constantFrom('', '?token=', '?token=wrong-wrong-wrong-wrong', '?token=has%20space', `?token=${'a'.repeat(300)}`, '?tok=x')
    .map((query) => ({
      what: `token ${query}`,
      path: `/providers/optty/notifications${query}`,
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(valid()),
    }));
  const twice = fc.constant({
    what: 'token twice',
    path: `${withToken()}&token=${token()}`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(valid()),
  });
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(null).chain(() => brokenJson(withToken(), () => ({}), valid, shape)) },
    { weight: 1, arbitrary: badToken },
    { weight: 1, arbitrary: twice },
  );
}

function addonPaymentsRequests(): fc.Arbitrary<Hostile> {
  const operation = (inner: string) => `<response><operations><operation sorted-order="1">${inner}</operation></operations><status>SUCCESS</status></response>`;
  const valid = operation(`<status>SUCCESS</status><merchantTransactionId>${'REF'}</merchantTransactionId><transactionId>1</transactionId>`);
  const post = (body: string | Buffer, type = 'text/xml') => ({
    path: '/providers/addon-payments/status',
    method: 'POST' as const,
    headers: { 'content-type': type },
    body,
  });
  const xml = () => valid.replace('REF', target.refundId);
  return fc.oneof(
    fc
      .constantFrom(
        operation('<status>SUCCESS</status>'),
        operation(`<merchantTransactionId>${target.refundId}</merchantTransactionId>`),
        '<response><operations></operations></response>',
        `<other>${xml()}</other>`,
        `<!DOCTYPE response [<!ENTITY x "y">]>${xml()}`,
        `<?xml-stylesheet href="x"?>${xml()}`,
        xml().replace('</response>', ''),
        `${xml()}<response/>`,
        xml().replace(target.refundId, `${target.refundId}&bogus;`),
        `${'<a>'.repeat(40)}${'</a>'.repeat(40)}`,
        '',
        'not xml at all',
      )
      .map((body) => ({ what: `xml ${body.slice(0, 40)}`, ...post(body) })),
    fc
      .constantFrom(
        '{}',
        '{"response":{"operationsArray":[]}}',
        '{"response":{"operationsArray":[{"merchantTransactionId":"x"}]}}',
        '{"response":',
        '{"response":{"operationsArray":{"status":"SUCCESS"}}}',
      )
      .map((body) => ({
        what: `json ${body}`,
        ...post(body, 'application/json'),
      })),
    fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', '', 'application/json').map((type) => ({ what: `type ${type}`, ...post(xml(), type) })),
    fc.constant({ what: 'invalid UTF-8', ...post(Buffer.concat([Buffer.from(xml().slice(0, 30)), Buffer.from([0xff, 0xfe]), Buffer.from(xml().slice(30))])) }),
    fc.constant({
      what: 'oversized',
      ...post(xml().replace('<status>SUCCESS</status></response>', `<status>SUCCESS</status><pad>${'x'.repeat(40 * 1024)}</pad></response>`)),
    }),
  );
}

async function send(request: Hostile): Promise<RawAnswer> {
  return requestFrom('127.0.0.1', `${stack.url}${request.path}`, {
    method: request.method ?? 'POST',
    ...(request.headers && { headers: request.headers }),
    ...(request.body !== undefined && { body: request.body }),
  });
}

let sent = 0;
const ROUTES: [string, () => fc.Arbitrary<Hostile>][] = [
  ['POST /refundid/refund', rmaRequests],
  ['GET /refundid/order', orderFetchRequests],
  ['POST /providers/paypro/ipn', ipnRequests],
  ['POST /providers/optty/notifications', opttyRequests],
  ['POST /providers/addon-payments/status', addonPaymentsRequests],
];

describe('hostile requests to the Refundid and provider-notification routes', () => {
  it.each(ROUTES)('%s answers every one with a 4xx', async (_, requests) => {
    await fc.assert(
      fc.asyncProperty(fc.array(requests(), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const answers = await Promise.all(batch.map(send));
        sent += batch.length;
        const wrong = answers.flatMap((answer, i) =>
          answer.status >= 400 && answer.status < 500 && /"error":\{"code"/.test(answer.body)
            ? []
            : [`${batch[i]!.what} → ${answer.status} ${answer.body.slice(0, 200)}`],
        );
        if (wrong.length > 0) throw new Error(wrong.join('\n'));
      }),
      { numRuns: RUNS, seed: 20_261_121 },
    );
  });

  it('wrote nothing at all', async () => {
    expect(sent).toBe(ROUTES.length * RUNS * BATCH);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });
});

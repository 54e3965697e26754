import { SecretReader, type SecretSource } from '../../../lambdas/commons/secrets';
import { ap21SecretSchema, type Ap21Read } from '../../../lambdas/providers/ap21/schemas';
import {
  Ap21AuthenticationError,
  Ap21InvalidRequestError,
  Ap21NotFoundError,
  Ap21RejectedError,
  Ap21ResponseError,
  Ap21UnavailableError,
  errorForResponse,
  readAp21ErrorBody,
  refundStateOf,
} from '../../../lambdas/providers/ap21/statuses';
import { NO_FAULTS } from '../../../simulators/kit';
import { ACCESS_TOKEN, BASIC, BELT, LINEN_SHIRT, startAp21, type Ap21Harness } from '../../support/harness/ap21-client';

const T0 = Date.parse('2026-01-15T00:00:00.000Z');

/** The documents of an Ap21 list, each of which must have been readable. */
function readable<T>(reads: readonly Ap21Read<T>[]): T[] {
  return reads.map((read) => {
    if (read.kind !== 'read') throw new Error(`unreadable: ${read.unreadable.reason}`);
    return read.value;
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('Ap21 changed orders (GET /Orders/?updatedAfter=)', () => {
  let ap21: Ap21Harness;
  const changed: string[] = [];
  beforeAll(async () => {
    ap21 = await startAp21();
    ap21.sim.addOrder({ lines: [LINEN_SHIRT], updatedAt: T0 - 3600_000 });
    for (let i = 4; i >= 1; i--) changed.unshift(ap21.sim.addOrder({ lines: [LINEN_SHIRT], updatedAt: T0 + i * 1000 }).orderId);
  });
  afterAll(() => ap21.close());

  it('pages through the orders changed since a time, sending it as Ap21 wall-clock time, and stops at TotalRows', async () => {
    const client = ap21.client();
    const pages = [];
    for (let startRow = 1, more = true; more && pages.length < 10;) {
      const page = await client.listOrdersChangedSince(new Date(T0).toISOString(), { startRow, pageRows: 2 });
      pages.push(page);
      startRow += page.rows.length;
      more = page.hasMore;
    }
    expect(pages.map((page) => [page.rows.length, page.totalRows, page.hasMore])).toEqual([
      [2, 4, true],
      [2, 4, false],
    ]);
    expect(pages.flatMap((page) => readable(page.rows).map((order) => order.orderId))).toEqual(changed);
    // 2026-01-15T00:00:00Z is 11:00 in Melbourne (AEDT, UTC+11); Ap21 times carry no offset.
    expect(ap21.sim.calls('GET /Orders').map((call) => call.query)).toEqual([
      { countryCode: 'AU', updatedAfter: '2026-01-15T11:00:00', startRow: '1', pageRows: '2' },
      { countryCode: 'AU', updatedAfter: '2026-01-15T11:00:00', startRow: '3', pageRows: '2' },
    ]);
  });

  it('reads "nothing changed" (Ap21 answers 404) as an empty, final page', async () => {
    const page = await ap21.client().listOrdersChangedSince('2030-01-01T00:00:00Z', { startRow: 1, pageRows: 50 });
    expect(page).toEqual({ rows: [], startRow: 1, pageRows: 50, hasMore: false });
  });

  it('throws, instead of reporting "no changes", when the 404 is not Ap21\'s "no data found" (e.g. a wrong base URL)', async () => {
    const misconfigured = ap21.client({ AP21_API_URL: `${ap21.baseUrl}/RetailAPI/` });
    const error = await rejection(misconfigured.listOrdersChangedSince(new Date(T0).toISOString(), { startRow: 1, pageRows: 2 }));
    expect(error).toBeInstanceOf(Ap21NotFoundError);
  });

  it.each([
    ['a time without a date', 'yesterday', { startRow: 1, pageRows: 10 }],
    ['startRow 0 (rows count from 1)', '2026-01-15T00:00:00Z', { startRow: 0, pageRows: 10 }],
    ['a fractional page size', '2026-01-15T00:00:00Z', { startRow: 1, pageRows: 2.5 }],
  ])('refuses %s before calling Ap21', async (_, since, page) => {
    const before = ap21.sim.calls().length;
    expect(await rejection(ap21.client().listOrdersChangedSince(since, page))).toBeInstanceOf(Ap21InvalidRequestError);
    expect(ap21.sim.calls()).toHaveLength(before);
  });
});

describe('Ap21 order (GET /Persons/{pid}/Orders/{oid}/)', () => {
  let ap21: Ap21Harness;
  beforeAll(async () => {
    ap21 = await startAp21();
  });
  afterAll(() => ap21.close());

  it('reads lines, payments (Stan, MerchantId, CardType) and the e-mail, with money in integer minor units', async () => {
    const order = ap21.sim.addOrder({
      personId: '101451',
      orderNumber: 'W0000124',
      email: 'jane@example.com',
      lines: [LINEN_SHIRT, BELT],
      payments: [{ origin: 'CreditCard', cardType: 'VISA', stan: '986516', reference: 'Ref1', merchantId: 'JGH123', amountMinor: 16480 }],
      orderedAt: Date.parse('2026-07-01T00:00:05Z'),
    });
    const read = await ap21.client().getOrder('101451', order.orderId);
    expect(read).toEqual({
      orderId: order.orderId,
      orderNumber: 'W0000124',
      personId: '101451',
      orderedAt: '2026-07-01T00:00:05.000Z',
      currency: 'AUD',
      email: 'jane@example.com',
      totalDue: { minor: 16480, currency: 'AUD' },
      lines: [
        {
          lineId: order.lines[0]!.lineId,
          skuId: '21503',
          quantity: 2,
          price: { minor: 5990, currency: 'AUD' },
          value: { minor: 11980, currency: 'AUD' },
          discount: { minor: 0, currency: 'AUD' },
          productCode: 'P21503',
          productName: 'LINEN SHIRT',
          colourName: 'BLACK',
          sizeCode: 'M',
          status: 'Processing',
        },
        {
          lineId: order.lines[1]!.lineId,
          skuId: '880',
          quantity: 1,
          price: { minor: 4500, currency: 'AUD' },
          value: { minor: 4500, currency: 'AUD' },
          discount: { minor: 0, currency: 'AUD' },
          productCode: 'P880',
          productName: 'BELT',
          colourName: 'BLACK',
          sizeCode: 'M',
          status: 'Processing',
        },
      ],
      payments: [
        {
          paymentId: order.payments[0]!.paymentId,
          origin: 'CreditCard',
          cardType: 'VISA',
          stan: '986516',
          reference: 'Ref1',
          merchantId: 'JGH123',
          amount: { minor: 16480, currency: 'AUD' },
        },
      ],
      paymentsVisible: true,
    });
  });

  it('reports an unknown order, or an order of another person, as permanently not found', async () => {
    const order = ap21.sim.addOrder({ lines: [BELT] });
    for (const [personId, orderId] of [
      [order.personId, '999999'],
      ['1', order.orderId],
    ] as const) {
      const error = await rejection(ap21.client().getOrder(personId, orderId));
      expect(error).toBeInstanceOf(Ap21NotFoundError);
      expect(error).toMatchObject({ retryable: false, code: 5008 });
    }
  });

  it('refuses ids that are not Ap21 numeric ids, so nothing can be smuggled into the path', async () => {
    const before = ap21.sim.calls().length;
    expect(await rejection(ap21.client().getOrder('1/../../Persons', '2'))).toBeInstanceOf(Ap21InvalidRequestError);
    expect(ap21.sim.calls()).toHaveLength(before);
  });
});

describe('Ap21 returns of an order', () => {
  let ap21: Ap21Harness;
  beforeAll(async () => {
    ap21 = await startAp21();
  });
  afterAll(() => ap21.close());

  it('lists the returns and tells a return Refundid already refunded from one nobody refunded', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT, BELT] });
    const plain = ap21.sim.addReturn(order.orderId, { lines: [{ skuId: BELT.skuId, quantity: -1 }] });
    const viaRefundid = ap21.sim.addRefundidReturn(order.orderId, { lines: [{ skuId: LINEN_SHIRT.skuId, quantity: -2 }], stan: '0938' });

    const returns = readable(await ap21.client().listReturns(order.personId, order.orderId));
    expect(returns.map((ret) => [ret.returnId, ret.origOrderNumber, ret.lines.map((line) => [line.skuId, line.quantity])])).toEqual([
      [plain.returnId, order.orderNumber, [['880', -1]]],
      [viaRefundid.returnId, order.orderNumber, [['21503', -2]]],
    ]);
    expect(refundStateOf(returns[0]!)).toEqual({ kind: 'not_refunded' });
    const state = refundStateOf(returns[1]!);
    expect(state).toMatchObject({ kind: 'refunded_via_refundid', refunded: { minor: 11980, currency: 'AUD' } });

    const single = await ap21.client().getReturn(order.personId, order.orderId, viaRefundid.returnId);
    expect(single).toEqual(returns[1]);
    expect(single.payments).toEqual([
      expect.objectContaining({
        merchantId: 'Refundid',
        cardType: 'Refundid',
        stan: '0938',
        reference: 'Refundid 0938',
        amount: { minor: -11980, currency: 'AUD' },
      }),
    ]);
    expect(single.lines[0]).toMatchObject({ returnReasonId: '10365', value: { minor: -11980, currency: 'AUD' } });
  });

  it('answers an empty list for an order without returns (404 with 5008), but throws when the list path itself is wrong', async () => {
    const order = ap21.sim.addOrder({ lines: [BELT] });
    expect(await ap21.client().listReturns(order.personId, order.orderId)).toEqual([]);
    const wrongPath = ap21.client({ AP21_RETURNS_LIST_PATH: 'Persons/{personId}/Orders/{orderId}/Refunds' });
    expect(await rejection(wrongPath.listReturns(order.personId, order.orderId))).toBeInstanceOf(Ap21NotFoundError);
  });

  it('below payload version 4.0 says the payments are not visible, never that the return is unpaid', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
    const paid = ap21.sim.addRefundidReturn(order.orderId, { lines: [{ skuId: LINEN_SHIRT.skuId, quantity: -1 }] });
    const v2 = await ap21.client({ AP21_API_VERSION: '2.0' }).getReturn(order.personId, order.orderId, paid.returnId);
    expect(v2.paymentsVisible).toBe(false);
    expect(refundStateOf(v2)).toEqual({ kind: 'payments_not_visible' });

    const url = `${ap21.baseUrl}/Persons/${order.personId}/Orders/${order.orderId}/Returns/${paid.returnId}?countryCode=AU`;
    const authorization = `Basic ${Buffer.from(`${BASIC.username}:${BASIC.password}`).toString('base64')}`;
    const withoutAccept = await (await fetch(url, { headers: { authorization, 'content-type': 'text/xml' } })).text();
    const withV4 = await (await fetch(url, { headers: { authorization, 'content-type': 'text/xml', accept: 'version_4.0' } })).text();
    expect(withoutAccept).toContain('<Payments />');
    expect(withoutAccept).not.toMatch(/PaymentDetail|<Currency>|OrigOrderNum/);
    expect(withV4).toMatch(/<PaymentDetail>.*<MerchantId>Refundid<\/MerchantId>.*<Amount>-59\.90<\/Amount>/);
  });

  it('treats a return Ap21 refunded itself to the original payment (StockUpdate=False) as refunded, not as open', async () => {
    const order = ap21.sim.addOrder({ lines: [BELT], payments: [{ origin: 'CreditCard', merchantId: 'SecurePay', stan: '7781', amountMinor: 4500 }] });
    ap21.sim.addReturn(order.orderId, { orderNumber: `${order.orderNumber}-RR1`, stockUpdate: false, lines: [{ skuId: BELT.skuId, quantity: -1 }] });
    const [read] = readable(await ap21.client().listReturns(order.personId, order.orderId));
    expect(refundStateOf(read!)).toMatchObject({ kind: 'refunded_in_ap21', refunded: { minor: 4500, currency: 'AUD' } });
    expect(read!.payments).toEqual([expect.objectContaining({ merchantId: 'SecurePay', stan: '7781', amount: { minor: -4500, currency: 'AUD' } })]);
    expect(ap21.sim.payouts().get(`${order.orderNumber}-RR1`)).toBe(1);
  });
});

describe('posting a return (POST /Persons/{pid}/Orders/{oid}/Returns)', () => {
  let ap21: Ap21Harness;
  beforeAll(async () => {
    ap21 = await startAp21();
  });
  afterAll(() => ap21.close());

  const refundidReturn = (origOrderNumber: string, orderNumber: string, skuId = LINEN_SHIRT.skuId) => ({
    orderNumber,
    origOrderNumber,
    lines: [{ skuId, quantity: -1, returnReasonId: '10365', carrier: 'EMS', conNote: 'ABC1234' }],
    payments: [
      {
        origin: 'CreditCard',
        merchantId: 'Refundid',
        cardType: 'Refundid',
        stan: '0938',
        amount: { minor: -5990, currency: 'AUD' },
        reference: 'Refundid 0938',
      },
    ],
  });

  it('sends a ReturnOrder with negative quantities and a Refundid payment, never StockUpdate=False, and reads it back', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
    const result = await ap21.client().postReturn(order.personId, order.orderId, refundidReturn(order.orderNumber, 'RR-1001'));
    const [stored] = ap21.sim.returnsOf(order.orderId);
    expect(stored!.stockUpdate).toBe(true);
    expect(ap21.sim.payouts().size).toBe(0);
    expect(result).toEqual({ kind: 'created', returnId: stored!.returnId });
    const read = await ap21.client().getReturn(order.personId, order.orderId, stored!.returnId);
    expect(read).toMatchObject({
      orderNumber: 'RR-1001',
      origOrderNumber: order.orderNumber,
      personId: order.personId,
      lines: [{ skuId: '21503', quantity: -1 }],
    });
    expect(refundStateOf(read)).toMatchObject({ kind: 'refunded_via_refundid', refunded: { minor: 5990 } });
    expect(ap21.sim.order(order.orderId)!.updatedAt).toBe(stored!.createdAt);
  });

  it('answers already_exists when a retried POST meets 5052 (duplicate OrderNumber), and creates nothing', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
    const client = ap21.client();
    expect((await client.postReturn(order.personId, order.orderId, refundidReturn(order.orderNumber, 'RR-2002'))).kind).toBe('created');
    expect(await client.postReturn(order.personId, order.orderId, refundidReturn(order.orderNumber, 'RR-2002'))).toEqual({ kind: 'already_exists' });
    expect(ap21.sim.returnsOf(order.orderId)).toHaveLength(1);
  });

  it('reports a SKU that is not on the original order as permanent API error 5139', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
    const error = await rejection(ap21.client().postReturn(order.personId, order.orderId, refundidReturn(order.orderNumber, 'RR-3003', '999')));
    expect(error).toBeInstanceOf(Ap21RejectedError);
    expect(error).toMatchObject({ status: 403, code: 5139, retryable: false });
    expect(ap21.sim.returnsOf(order.orderId)).toEqual([]);
  });

  it('never sends a positive quantity; Ap21 itself answers one with permanent API error 5140', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
    const posts = () => ap21.sim.calls('POST /Persons/{pid}/Orders/{oid}/Returns').length;
    const before = posts();
    const positive = { ...refundidReturn(order.orderNumber, 'RR-4004'), lines: [{ skuId: LINEN_SHIRT.skuId, quantity: 1, returnReasonId: '10365' }] };
    expect(await rejection(ap21.client().postReturn(order.personId, order.orderId, positive))).toBeInstanceOf(Ap21InvalidRequestError);
    const positivePayment = { ...refundidReturn(order.orderNumber, 'RR-4005'), payments: [{ origin: 'CreditCard', amount: { minor: 5990, currency: 'AUD' } }] };
    expect(await rejection(ap21.client().postReturn(order.personId, order.orderId, positivePayment))).toBeInstanceOf(Ap21InvalidRequestError);
    expect(posts()).toBe(before);

    const response = await fetch(`${ap21.baseUrl}/Persons/${order.personId}/Orders/${order.orderId}/Returns?countryCode=AU`, {
      method: 'POST',
      headers: { 'x-ap21-access-token': ACCESS_TOKEN, 'content-type': 'text/xml', accept: 'version_4.0' },
      body: `<ReturnOrder><OrderNumber>RR-4006</OrderNumber><OrigOrderNum>${order.orderNumber}</OrigOrderNum><PersonId>${order.personId}</PersonId><OrderDetails><OrderDetail><SkuId>21503</SkuId><Quantity>1</Quantity><ReturnReasonId>10365</ReturnReasonId></OrderDetail></OrderDetails></ReturnOrder>`,
    });
    const error = errorForResponse({ status: response.status, headers: response.headers, text: await response.text() }, 'a return', true);
    expect(error).toBeInstanceOf(Ap21RejectedError);
    expect(error).toMatchObject({ status: 403, code: 5140, retryable: false });
  });

  it('refuses return payments when configured below version 4.0, where Ap21 would drop them silently', async () => {
    const order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
    const v2 = ap21.client({ AP21_API_VERSION: '2.0' });
    expect(await rejection(v2.postReturn(order.personId, order.orderId, refundidReturn(order.orderNumber, 'RR-5005')))).toBeInstanceOf(Ap21InvalidRequestError);
  });
});

describe('Ap21 access: countryCode and credentials', () => {
  let ap21: Ap21Harness;
  let order: { personId: string; orderId: string };
  beforeAll(async () => {
    ap21 = await startAp21();
    order = ap21.sim.addOrder({ lines: [BELT] });
  });
  afterAll(() => ap21.close());

  it('sends countryCode, Content-Type text/xml and Accept version_4.0 on every call', async () => {
    await ap21.client().getOrder(order.personId, order.orderId);
    await ap21.client().listReturns(order.personId, order.orderId);
    await ap21.client().listOrdersChangedSince('2020-01-01T00:00:00Z', { startRow: 1, pageRows: 5 });
    expect(ap21.sim.calls().map((call) => [call.query.countryCode, call.status])).toEqual([
      ['AU', 200],
      ['AU', 404],
      ['AU', 200],
    ]);
  });

  it('is refused without countryCode (the simulator answers 403 with 5029), and a wrong country is a permanent error', async () => {
    const authorization = `Basic ${Buffer.from(`${BASIC.username}:${BASIC.password}`).toString('base64')}`;
    const response = await fetch(`${ap21.baseUrl}/Persons/${order.personId}/Orders/${order.orderId}/`, { headers: { authorization, accept: 'version_4.0' } });
    expect(response.status).toBe(403);
    expect(readAp21ErrorBody(await response.text())).toMatchObject({ code: 5029 });
    const error = await rejection(ap21.client({ AP21_COUNTRY_CODE: 'ZZ' }).getOrder(order.personId, order.orderId));
    expect(error).toBeInstanceOf(Ap21RejectedError);
    expect(error).toMatchObject({ code: 5029, retryable: false });
  });

  it('authenticates with HTTP Basic or with the X-Ap21-Access-Token header, whichever the secret holds', async () => {
    await expect(ap21.client({}, BASIC).getOrder(order.personId, order.orderId)).resolves.toMatchObject({ orderId: order.orderId });
    await expect(ap21.client({}, { accessToken: ACCESS_TOKEN }).getOrder(order.personId, order.orderId)).resolves.toMatchObject({ orderId: order.orderId });
  });

  it.each([
    ['a wrong password', { username: BASIC.username, password: 'wrong' }],
    ['a wrong access token', { accessToken: 'not-the-token' }],
  ])('reports %s as a permanent authentication error', async (_, secret) => {
    const error = await rejection(ap21.client({}, secret).getOrder(order.personId, order.orderId));
    expect(error).toBeInstanceOf(Ap21AuthenticationError);
    expect(error).toMatchObject({ retryable: false });
  });

  it('tries once more with a re-read secret after a 401, so a rotated password does not stop the poller', async () => {
    const stored = [{ ...BASIC, password: 'rotated-away' }, BASIC];
    const source: SecretSource = { get: async () => stored.shift() ?? BASIC };
    const reader = new SecretReader(source, 'ap21', ap21SecretSchema);
    const before = ap21.sim.calls().length;
    await expect(ap21.client({}, reader).getOrder(order.personId, order.orderId)).resolves.toMatchObject({ orderId: order.orderId });
    expect(
      ap21.sim
        .calls()
        .slice(before)
        .map((call) => call.status),
    ).toEqual([401, 200]);
  });
});

describe('Ap21 failures are typed: retryable or permanent', () => {
  let ap21: Ap21Harness;
  let order: { personId: string; orderId: string; orderNumber: string };
  beforeAll(async () => {
    ap21 = await startAp21({}, () => 0.1);
    order = ap21.sim.addOrder({ lines: [LINEN_SHIRT] });
  });
  afterEach(() => ap21.host.setFaults('ap21', NO_FAULTS));
  afterAll(() => ap21.close());

  const aReturn = (orderNumber: string) => ({
    orderNumber,
    origOrderNumber: order.orderNumber,
    lines: [{ skuId: LINEN_SHIRT.skuId, quantity: -1, returnReasonId: '10365' }],
  });

  it('classifies a 5xx as retryable, and as ambiguous after a POST, which is then safe to retry with the same OrderNumber', async () => {
    ap21.host.setFaults('ap21', { failureRate: 1 });
    const read = await rejection(ap21.client().getOrder(order.personId, order.orderId));
    expect(read).toBeInstanceOf(Ap21UnavailableError);
    expect(read).toMatchObject({ retryable: true, details: { status: 503, ambiguous: false } });
    ap21.host.setFaults('ap21', NO_FAULTS);

    ap21.sim.injectFailures(1, { status: 500 });
    const post = await rejection(ap21.client().postReturn(order.personId, order.orderId, aReturn('RR-6006')));
    expect(post).toMatchObject({ retryable: true, details: { status: 500, ambiguous: true } });
    expect((await ap21.client().postReturn(order.personId, order.orderId, aReturn('RR-6006'))).kind).toBe('created');
  });

  it('classifies 429 as retryable and passes on Retry-After, and an Ap21 SQL error (5015) as retryable', async () => {
    ap21.sim.injectFailures(1, { status: 429, retryAfterSeconds: 7 });
    expect(await rejection(ap21.client().getOrder(order.personId, order.orderId))).toMatchObject({
      retryable: true,
      details: { status: 429, retryAfterMs: 7000, ambiguous: false },
    });
    ap21.sim.injectFailures(1, { status: 403, code: 5015 });
    expect(await rejection(ap21.client().getOrder(order.personId, order.orderId))).toMatchObject({ retryable: true, details: { code: 5015 } });
  });

  it('classifies a timeout as retryable; a POST that timed out after Ap21 stored it meets 5052 on retry, so it is stored once', async () => {
    ap21.host.setFaults('ap21', { timeoutRate: 1, hangMs: 400 });
    const client = ap21.client({ AP21_TIMEOUT_MS: '150' });
    const read = await rejection(client.getOrder(order.personId, order.orderId));
    expect(read).toBeInstanceOf(Ap21UnavailableError);
    expect(read).toMatchObject({ retryable: true, details: { ambiguous: false } });
    expect(read.message).toMatch(/did not answer within 150 ms/);

    const before = ap21.sim.returnsOf(order.orderId).length;
    expect(await rejection(client.postReturn(order.personId, order.orderId, aReturn('RR-7007')))).toMatchObject({
      retryable: true,
      details: { ambiguous: true },
    });
    ap21.host.setFaults('ap21', NO_FAULTS);
    expect(await client.postReturn(order.personId, order.orderId, aReturn('RR-7007'))).toEqual({ kind: 'already_exists' });
    expect(ap21.sim.returnsOf(order.orderId).filter((ret) => ret.orderNumber === 'RR-7007')).toHaveLength(1);
    expect(ap21.sim.returnsOf(order.orderId)).toHaveLength(before + 1);
  });

  it.each([
    ['truncated XML', '<Order><Id>1</Id>'],
    ['a DTD with an entity', '<!DOCTYPE Order [<!ENTITY x "y">]><Order><Id>&x;</Id></Order>'],
    [
      'a line without SkuId',
      '<Order><Id>1</Id><OrderNumber>W1</OrderNumber><PersonId>2</PersonId><OrderDetails><OrderDetail><Id>3</Id><Quantity>1</Quantity><Value>10</Value></OrderDetail></OrderDetails></Order>',
    ],
    [
      'a fractional quantity',
      '<Order><Id>1</Id><OrderNumber>W1</OrderNumber><PersonId>2</PersonId><OrderDetails><OrderDetail><Id>3</Id><SkuId>4</SkuId><Quantity>1.5</Quantity><Value>10</Value></OrderDetail></OrderDetails></Order>',
    ],
    [
      'an amount finer than cents',
      '<Order><Id>1</Id><OrderNumber>W1</OrderNumber><PersonId>2</PersonId><Payments><PaymentDetail><Amount>10.001</Amount></PaymentDetail></Payments></Order>',
    ],
    ['the wrong document', '<Person><Id>1</Id></Person>'],
  ])('refuses %s as a permanent response error', async (_, body) => {
    ap21.sim.injectFailures(1, { status: 200, body });
    const error = await rejection(ap21.client().getOrder(order.personId, order.orderId));
    expect(error).toBeInstanceOf(Ap21ResponseError);
    expect(error).toMatchObject({ retryable: false });
  });

  it('treats an <Ap21Error> document as an error even when it comes with status 200', async () => {
    ap21.sim.injectFailures(1, { status: 200, code: 5029 });
    expect(await rejection(ap21.client().getOrder(order.personId, order.orderId))).toMatchObject({ name: 'Ap21RejectedError', code: 5029, retryable: false });
  });

  it('refuses a return read back with a non-negative quantity', async () => {
    ap21.sim.injectFailures(1, {
      status: 200,
      body: '<ReturnOrder><Id>9</Id><OrderNumber>R1</OrderNumber><PersonId>2</PersonId><OrderDetails><OrderDetail><SkuId>4</SkuId><Quantity>2</Quantity></OrderDetail></OrderDetails></ReturnOrder>',
    });
    expect(await rejection(ap21.client().getReturn(order.personId, order.orderId, '9'))).toBeInstanceOf(Ap21ResponseError);
  });

  it('reads the API error code from an IIS HTML error page too', () => {
    const page = '<!DOCTYPE html><html><body><ErrorCode>5052</ErrorCode><Description>The order number already exists</Description></body></html>';
    expect(readAp21ErrorBody(page)).toEqual({ code: 5052, description: 'The order number already exists' });
  });
});

describe('Ap21 self-throttling', () => {
  let ap21: Ap21Harness;
  beforeAll(async () => {
    ap21 = await startAp21();
  });
  afterAll(() => ap21.close());

  it('spaces concurrent calls at least 1/N s apart, first come first served', async () => {
    const orders = Array.from({ length: 6 }, () => ap21.sim.addOrder({ lines: [BELT] }));
    const client = ap21.client({ AP21_MAX_CALLS_PER_SECOND: '10' });
    // A first call opens the keep-alive connection, so arrival times below measure spacing, not connection set-up.
    await client.listOrdersChangedSince('2030-01-01T00:00:00Z', { startRow: 1, pageRows: 1 });
    const started = performance.now();
    await Promise.all(orders.map((order) => client.getOrder(order.personId, order.orderId)));
    expect(performance.now() - started).toBeGreaterThanOrEqual(490);

    const calls = ap21.sim.calls('GET /Persons/{pid}/Orders/{oid}');
    expect(calls.map((call) => call.path.split('/')[4])).toEqual(orders.map((order) => order.orderId));
    // Arrival times carry some 25 ms of loopback and event-loop jitter; unthrottled calls arrive within a few ms.
    const gaps = calls.slice(1).map((call, i) => call.at - calls[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(50);
    expect(calls[5]!.at - calls[0]!.at).toBeGreaterThanOrEqual(450);
  });
});

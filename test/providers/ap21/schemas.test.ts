import { generateLocalSecrets } from '../../../local/secrets-file';
import { parseXml } from '../../../lambdas/commons/xml';
import { ap21SecretSchema, fromAp21DateTime, readReturn, toAp21DateTime } from '../../../lambdas/providers/ap21/schemas';
import { refundStateOf } from '../../../lambdas/providers/ap21/statuses';

describe('Ap21 secret', () => {
  it.each([
    ['username and password', { username: 'api', password: 'p', pushApiKey: 'k'.repeat(32) }],
    ['an access token', { accessToken: 't' }],
  ])('accepts %s', (_, secret) => {
    expect(ap21SecretSchema.safeParse(secret).success).toBe(true);
  });

  it('accepts the secret the local runtime generates', () => {
    expect(ap21SecretSchema.safeParse(generateLocalSecrets().ap21).success).toBe(true);
  });

  it.each([
    ['both ways at once', { username: 'api', password: 'p', accessToken: 't' }],
    ['neither way', { pushApiKey: 'k'.repeat(32) }],
    ['a username without password', { username: 'api' }],
    ['a colon in the username (it would split the Basic credentials)', { username: 'a:b', password: 'p' }],
    ['a short push key', { accessToken: 't', pushApiKey: 'short' }],
  ])('refuses %s', (_, secret) => {
    expect(ap21SecretSchema.safeParse(secret).success).toBe(false);
  });
});

describe('Ap21 wall-clock times', () => {
  it.each([
    ['2026-01-15T00:00:00.000Z', 'Australia/Melbourne', '2026-01-15T11:00:00'],
    ['2026-07-01T00:00:00.000Z', 'Australia/Melbourne', '2026-07-01T10:00:00'],
    ['2026-07-01T23:59:59.000Z', 'UTC', '2026-07-01T23:59:59'],
  ])('writes %s in %s as %s and reads it back', (iso, zone, wall) => {
    expect(toAp21DateTime(iso, zone)).toBe(wall);
    expect(fromAp21DateTime(wall, zone)).toBe(iso);
  });

  it('truncates to whole seconds, which only widens an updatedAfter window', () => {
    expect(toAp21DateTime('2026-01-15T00:00:00.999Z', 'UTC')).toBe('2026-01-15T00:00:00');
  });

  it.each(['2026-02-30T10:00:00', '2026-01-15', '15/01/2026 10:00:00'])('refuses %s', (text) => {
    expect(() => fromAp21DateTime(text, 'UTC')).toThrow(RangeError);
  });
});

describe('Ap21 return documents', () => {
  const context = { currency: 'AUD', timeZone: 'UTC' };
  const returnWith = (payments: string) =>
    parseXml(
      `<ReturnOrder><Id>62347</Id><OrderNumber>20170804-01-R</OrderNumber><PersonId>1241</PersonId><OrderDetails Type="Array" TotalRows="1"><OrderDetail><Id>195132</Id><SkuId>1784</SkuId><Quantity>-4.00</Quantity><Price>25</Price><Value>-100</Value><ReturnReasonId>10365</ReturnReasonId><Carrier>EMS</Carrier><Status>Processing</Status></OrderDetail></OrderDetails><Payments>${payments}</Payments><Currency><Code /></Currency><OrigOrderNum>20170804-01</OrigOrderNum><ReturnAuthorisationNumber>6026</ReturnAuthorisationNumber><Status>Processing</Status><SomethingNew>ignored</SomethingNew></ReturnOrder>`,
    );

  it('reads the guide-shaped return: negative whole units, minor units, and the configured currency when Code is empty', () => {
    const read = readReturn(returnWith(''), { ...context, paymentsVisible: true });
    expect(read).toEqual({
      returnId: '62347',
      orderNumber: '20170804-01-R',
      origOrderNumber: '20170804-01',
      personId: '1241',
      returnAuthorisationNumber: '6026',
      status: 'Processing',
      currency: 'AUD',
      lines: [
        {
          lineId: '195132',
          skuId: '1784',
          quantity: -4,
          returnReasonId: '10365',
          price: { minor: 2500, currency: 'AUD' },
          value: { minor: -10000, currency: 'AUD' },
          status: 'Processing',
        },
      ],
      payments: [],
      paymentsVisible: true,
    });
    expect(refundStateOf(read)).toEqual({ kind: 'not_refunded' });
  });

  it('recognises Refundid by CardType REFUNDID alone, in any case, and only for money going back', () => {
    const refund = '<PaymentDetail><MerchantId>SPG-1</MerchantId><CardType>REFUNDID</CardType><Origin>Other</Origin><Amount>-60.00</Amount></PaymentDetail>';
    const charge = '<PaymentDetail><MerchantId>Refundid</MerchantId><Amount>10.00</Amount></PaymentDetail>';
    expect(refundStateOf(readReturn(returnWith(refund + charge), { ...context, paymentsVisible: true }))).toMatchObject({
      kind: 'refunded_via_refundid',
      refunded: { minor: 6000, currency: 'AUD' },
    });
    expect(refundStateOf(readReturn(returnWith(charge), { ...context, paymentsVisible: true }))).toEqual({ kind: 'not_refunded' });
  });
});

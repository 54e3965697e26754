import { ConfigurationError } from '../../lambdas/commons/config';
import type { Ap21Payment } from '../../lambdas/providers/ap21/schemas';
import { cardLastFourOf, loadAp21LedgerSettings, loadReceiptRules, paymentProviderOf } from '../../lambdas/services/ap21-ledger';
import { loadAp21PollerSettings } from '../../lambdas/services/ap21-poller';

const payment = (fields: Partial<Ap21Payment>): Ap21Payment => ({ amount: { minor: 5990, currency: 'AUD' }, ...fields });

describe('Ap21 ledger settings', () => {
  it('maps payments to providers by MerchantId, CardType or Origin, first rule first, case-insensitively; nothing matched is other', () => {
    const { paymentProviders } = loadAp21LedgerSettings({
      AP21_PAYMENT_PROVIDERS: 'MerchantId:EPG-1=addon_payments, CardType:PayPro=paypro,Origin:Optty=optty,CardType:VISA=paypro',
    });
    expect(paymentProviderOf(payment({ merchantId: 'epg-1', cardType: 'VISA' }), paymentProviders)).toBe('addon_payments');
    expect(paymentProviderOf(payment({ cardType: ' PAYPRO ' }), paymentProviders)).toBe('paypro');
    expect(paymentProviderOf(payment({ origin: 'Optty' }), paymentProviders)).toBe('optty');
    expect(paymentProviderOf(payment({ origin: 'GiftVoucher' }), paymentProviders)).toBe('other');
  });

  it('knows Refundid by its documented set-up when the stage configures nothing', () => {
    const { paymentProviders, cardLastFour } = loadAp21LedgerSettings({});
    expect(paymentProviderOf(payment({ merchantId: 'Refundid' }), paymentProviders)).toBe('refundid');
    expect(paymentProviderOf(payment({ cardType: 'REFUNDID' }), paymentProviders)).toBe('refundid');
    expect(cardLastFour).toBeUndefined();
  });

  it('reads the last four only from the configured field, and only when it is nothing but a masked card ending in four digits', () => {
    const { cardLastFour } = loadAp21LedgerSettings({ AP21_CARD_LAST_FOUR_FIELD: 'Reference' });
    expect(cardLastFourOf(payment({ reference: '************7001' }), cardLastFour)).toBe('7001');
    expect(cardLastFourOf(payment({ reference: 'XXXX XXXX XXXX 7001' }), cardLastFour)).toBe('7001');
    expect(cardLastFourOf(payment({ reference: '7001' }), cardLastFour)).toBe('7001');
    for (const reference of ['4111111111117001', 'Ref-7001', '**70011', '', 'Refundid 0938'])
      expect(cardLastFourOf(payment({ reference }), cardLastFour)).toBeUndefined();
    expect(cardLastFourOf(payment({ accountId: '7001' }), cardLastFour)).toBeUndefined();
    const custom = loadAp21LedgerSettings({ AP21_CARD_LAST_FOUR_FIELD: 'AccountId', AP21_CARD_LAST_FOUR_PATTERN: String.raw`^VISA-(\d{4})$` }).cardLastFour;
    expect(cardLastFourOf(payment({ accountId: 'VISA-7001', reference: '7002' }), custom)).toBe('7001');
  });

  it.each([
    ['a rule without a provider', { AP21_PAYMENT_PROVIDERS: 'MerchantId:EPG' }],
    ['an unknown provider', { AP21_PAYMENT_PROVIDERS: 'CardType:VISA=stripe' }],
    ['an unknown field', { AP21_PAYMENT_PROVIDERS: 'Stan:1=paypro' }],
    ['a pattern without a capture group', { AP21_CARD_LAST_FOUR_FIELD: 'Reference', AP21_CARD_LAST_FOUR_PATTERN: String.raw`^\d{4}$` }],
    ['a pattern that does not compile', { AP21_CARD_LAST_FOUR_FIELD: 'Reference', AP21_CARD_LAST_FOUR_PATTERN: '(' }],
    ['an unknown last-four field', { AP21_CARD_LAST_FOUR_FIELD: 'Stan' }],
  ])('refuses %s', (_, env) => {
    expect(() => loadAp21LedgerSettings(env)).toThrow(ConfigurationError);
  });

  it.each([
    ['a receipt wait that is no whole number of days', { AP21_RECEIPT_WAIT_DAYS: '1.5' }, 'bad Ap21 ledger environment: AP21_RECEIPT_WAIT_DAYS'],
    ['an unknown exchange policy', { EXCHANGE_POLICY: 'swap' }, 'bad exchange environment: EXCHANGE_POLICY'],
  ])('names the variable when it refuses %s', (_, env, message) => {
    expect(() => loadAp21LedgerSettings(env)).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings(env)).toThrow(message);
  });
  it('names the variable when the receipt rules alone are read with a bad one', () => {
    expect(() => loadReceiptRules({ AP21_RECEIPT_WAIT_DAYS: '0' })).toThrow(ConfigurationError);
    expect(() => loadReceiptRules({ AP21_RECEIPT_WAIT_DAYS: '0' })).toThrow('bad Ap21 receipt environment: AP21_RECEIPT_WAIT_DAYS');
    expect(loadReceiptRules({}).payOnReceipt.size).toBe(0);
  });
});

describe('Ap21 poller settings', () => {
  it('has documented defaults and refuses an overlap that would stop paging from moving forward', () => {
    expect(loadAp21PollerSettings({})).toEqual({
      watermark: 'ap21-orders',
      overlapMs: 600_000,
      pageRows: 50,
      pageOverlap: 5,
      maxPages: 20,
      maxDurationMs: 50_000,
      initialLookbackMs: 24 * 3600_000,
      pendingPushes: 20,
      retries: 3,
      retryBaseMs: 500,
      retryMaxMs: 5_000,
      maxRefusalsInARow: 5,
      returnsRead: 'on_sign',
    });
    expect(loadAp21PollerSettings({ AP21_POLL_RETURNS_READ: 'always' }).returnsRead).toBe('always');
    expect(() => loadAp21PollerSettings({ AP21_POLL_RETURNS_READ: 'never' })).toThrow(ConfigurationError);
    expect(() => loadAp21PollerSettings({ AP21_POLL_RETURNS_READ: 'never' })).toThrow('bad Ap21 poller environment: AP21_POLL_RETURNS_READ');
    expect(() => loadAp21PollerSettings({ AP21_POLL_PAGE_ROWS: '5', AP21_POLL_PAGE_OVERLAP: '5' })).toThrow(ConfigurationError);
    expect(() => loadAp21PollerSettings({ AP21_POLL_MAX_SECONDS: '0' })).toThrow('bad Ap21 poller environment: AP21_POLL_MAX_SECONDS');
    expect(() => loadAp21PollerSettings({ AP21_POLL_RETRIES: '2.5' })).toThrow('bad Ap21 poller environment: AP21_POLL_RETRIES');
  });
});

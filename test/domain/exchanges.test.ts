import { ConfigurationError } from '../../lambdas/commons/config';
import {
  DEFAULT_EXCHANGE_RULES,
  compensatedInMoney,
  decideExchange,
  mayBeExchange,
  needsExchangeLookup,
  type ExchangeRules,
} from '../../lambdas/domain/exchanges';
import { addRefund, applyRefundEvent, openOrder, validateRefundShape, type NewRefund } from '../../lambdas/domain/order';
import { loadAp21LedgerSettings } from '../../lambdas/services/ap21-ledger';
import { loadExchangePolicy } from '../../lambdas/services/exchange-policy';

const RULES = DEFAULT_EXCHANGE_RULES;
const DIFFERENCE: ExchangeRules = { ...RULES, policy: 'refund_difference' };
const OFF: ExchangeRules = { ...RULES, policy: 'refund' };
const PLAIN = { status: 'Processing', authorisationNumber: '6026' };
const MERGED = { status: 'return merged ', authorisationNumber: '6026' };
const FOUND = { found: true as const, orderNumber: '6026', valueMinor: 8000 };

describe('the exchange rule (docs/design.md §2.8)', () => {
  it('never takes a ReturnAuthorisationNumber alone for an exchange: Ap21 must show the order, or the status must say so', () => {
    expect(decideExchange(PLAIN, undefined, 12000, RULES)).toEqual({ kind: 'not_exchange' });
    expect(decideExchange(PLAIN, { found: false }, 12000, RULES)).toEqual({ kind: 'not_exchange' });
    expect(decideExchange(PLAIN, FOUND, 12000, RULES)).toMatchObject({ kind: 'settled', settledBy: 'Ap21 exchange order 6026' });
    expect(decideExchange(MERGED, undefined, 12000, RULES)).toMatchObject({ kind: 'settled', note: 'settled by exchange (status return merged): no money' });
  });

  it('refunds only a positive difference, and only under refund_difference with the exchange order valued', () => {
    expect(decideExchange(PLAIN, FOUND, 12000, DIFFERENCE)).toMatchObject({ kind: 'difference', differenceMinor: 4000 });
    expect(decideExchange(PLAIN, FOUND, 8000, DIFFERENCE)).toMatchObject({ kind: 'settled' });
    expect(decideExchange(PLAIN, { ...FOUND, valueMinor: 15000 }, 12000, DIFFERENCE)).toMatchObject({
      kind: 'settled',
      note: expect.not.stringContaining('difference'),
    });
    expect(decideExchange(MERGED, undefined, 12000, DIFFERENCE)).toMatchObject({ kind: 'settled' });
    expect(decideExchange(PLAIN, FOUND, 12000, RULES)).toMatchObject({ kind: 'settled', note: expect.stringContaining('difference 4000 not refunded') });
  });

  it('is off under EXCHANGE_POLICY=refund: no lookup, no exchange', () => {
    expect(mayBeExchange(MERGED, OFF)).toBe(false);
    expect(decideExchange(MERGED, FOUND, 12000, OFF)).toEqual({ kind: 'not_exchange' });
  });

  it('asks Ap21 only when the answer can change the decision', () => {
    expect(needsExchangeLookup({ status: 'Processing' }, RULES)).toBe(false);
    expect(needsExchangeLookup(PLAIN, RULES)).toBe(true);
    expect(needsExchangeLookup(MERGED, RULES)).toBe(false);
    expect(needsExchangeLookup(MERGED, DIFFERENCE)).toBe(true);
    expect(needsExchangeLookup(PLAIN, OFF)).toBe(false);
  });

  it("reads Refundid's compensation_method: exchange and credit are not money, anything else is", () => {
    expect(['exchange', 'Credit', 'refund', undefined, null, 'store_credit'].map((method) => compensatedInMoney(method, RULES))).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
    ]);
    expect(compensatedInMoney('exchange', OFF)).toBe(true);
  });

  it('is stage configuration with documented defaults', () => {
    expect(loadAp21LedgerSettings({}).exchanges).toEqual({ policy: 'no_money', statuses: ['Return Merged', 'Exchange'] });
    expect(loadAp21LedgerSettings({ EXCHANGE_POLICY: 'refund_difference', AP21_EXCHANGE_STATUSES: 'Merged' }).exchanges).toEqual({
      policy: 'refund_difference',
      statuses: ['Merged'],
    });
    expect(loadExchangePolicy({})).toBe('no_money');
    expect(() => loadExchangePolicy({ EXCHANGE_POLICY: 'sometimes' })).toThrow(ConfigurationError);
    expect(() => loadAp21LedgerSettings({ AP21_EXCHANGE_STATUSES: 'Merged;Exchange' })).toThrow(ConfigurationError);
  });
});

describe('an exchange record in the ledger', () => {
  const order = openOrder(
    {
      orderId: 'o1',
      currency: 'AUD',
      lines: [{ lineId: 'l1', quantity: 1, valueMinor: 12000 }],
      payments: [{ paymentId: 'p1', capturedMinor: 12000, provider: 'addon_payments' }],
    },
    '2026-12-03T10:00:00.000Z',
  );
  const exchange: NewRefund = {
    refundId: 'ap21-1',
    lines: { l1: 1 },
    paymentId: 'p1',
    amount: { minor: 0, currency: 'AUD' },
    route: 'exchange',
    source: { kind: 'ap21_exchange', ref: '1' },
    alreadyPaid: true,
    settledBy: 'Ap21 exchange order 6026',
  };

  it('takes the units and no money, and gives the units back when Ap21 reverses the exchange', () => {
    const booked = addRefund(order, exchange, '2026-12-03T10:01:00.000Z');
    expect(booked.refund).toMatchObject({ state: 'paid', channel: 'exchange', settledBy: 'Ap21 exchange order 6026' });
    expect(booked.order.lines.l1).toMatchObject({ available: 0, refunded: 1 });
    expect(booked.order.payments.p1).toMatchObject({ availableMinor: 12000, refundedMinor: 0 });
    const reversed = applyRefundEvent(booked.order, 'ap21-1', 'exchange_reversed', { now: '2026-12-03T10:02:00.000Z', claimWindowMs: 0 });
    expect(reversed.plan).toMatchObject({ ok: true, refund: { state: 'released' } });
    expect(reversed.order.lines.l1).toMatchObject({ available: 1, refunded: 0 });
  });

  it('is refused without what settled it, on another source or unpaid; a refund of no money on another route is refused too', () => {
    const { settledBy: _settledBy, ...unsettled } = exchange;
    expect(() => validateRefundShape(unsettled)).toThrow(/exchange/);
    expect(() => validateRefundShape({ ...exchange, source: { kind: 'ap21_return', ref: '1' } })).toThrow(/exchange/);
    expect(() => validateRefundShape({ ...exchange, alreadyPaid: false })).toThrow(/exchange/);
    expect(() =>
      validateRefundShape({ ...exchange, route: 'reversal', alreadyPaid: false, source: { kind: 'ap21_return', ref: '1' }, settledBy: undefined }),
    ).toThrow(/positive/);
  });
});

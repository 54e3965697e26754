import { InvalidMoneyError } from '../../lambdas/domain/errors';
import { currencyExponent, formatDecimal, parseDecimal } from '../../lambdas/domain/money';

describe('money in minor units', () => {
  it.each([
    ['59.90', 'AUD', 5990],
    ['-80.00', 'AUD', -8000],
    ['30', 'EUR', 3000],
    ['30.0000', 'EUR', 3000],
    ['0.1', 'AUD', 10],
    ['1500', 'JPY', 1500],
    ['1.234', 'KWD', 1234],
    ['90071992547409.91', 'AUD', 9007199254740991],
  ])('parses %s %s as %d minor units without floating point', (text, currency, minor) => {
    expect(parseDecimal(text, currency)).toEqual({ minor, currency });
  });

  it.each([
    ['0.005', 'AUD'],
    ['1.5', 'JPY'],
    ['1e3', 'AUD'],
    ['12,50', 'EUR'],
    ['', 'AUD'],
    ['NaN', 'AUD'],
    ['90071992547409.92', 'AUD'],
    ['1.00', 'XXQ'],
    ['1.00', 'aud'],
  ])('rejects %j %s', (text, currency) => {
    expect(() => parseDecimal(text, currency)).toThrow(InvalidMoneyError);
  });

  it('formats with the currency digits, or padded for providers that want more', () => {
    expect(formatDecimal({ minor: 5990, currency: 'AUD' })).toBe('59.90');
    expect(formatDecimal({ minor: -5, currency: 'AUD' })).toBe('-0.05');
    expect(formatDecimal({ minor: 3000, currency: 'EUR' }, 4)).toBe('30.0000');
    expect(formatDecimal({ minor: 1500, currency: 'JPY' })).toBe('1500');
    expect(formatDecimal({ minor: 1500, currency: 'JPY' }, 4)).toBe('1500.0000');
  });

  it('knows the digits of each currency', () => {
    expect([currencyExponent('AUD'), currencyExponent('JPY'), currencyExponent('BHD')]).toEqual([2, 0, 3]);
  });
});

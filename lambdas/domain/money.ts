import { InvalidMoneyError } from './errors';

/** An amount in integer minor units (cents) of an ISO 4217 currency. Never a float. */
export interface Money {
  readonly minor: number;
  readonly currency: string;
}

const CURRENCY = /^[A-Z]{3}$/;
const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;
const exponents = new Map<string, number>();
let knownCurrencies: ReadonlySet<string> | undefined;

/** Digits after the decimal point for a currency (AUD 2, JPY 0, KWD 3), from the runtime's ICU data. */
export function currencyExponent(currency: string): number {
  const cached = exponents.get(currency);
  if (cached !== undefined) return cached;
  knownCurrencies ??= new Set(Intl.supportedValuesOf('currency'));
  if (!CURRENCY.test(currency) || !knownCurrencies.has(currency)) throw new InvalidMoneyError(`not an ISO 4217 currency code: ${currency}`);
  const exponent = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  exponents.set(currency, exponent);
  return exponent;
}

export function money(minor: number, currency: string): Money {
  if (!Number.isSafeInteger(minor)) throw new InvalidMoneyError(`minor units must be a safe integer, got ${minor}`);
  currencyExponent(currency);
  return { minor, currency };
}

/**
 * Parses a decimal string ("59.90", "-80.00", "30") into minor units without floating point.
 * More fractional digits than the currency has are rejected unless they are all zero ("30.0000").
 */
export function parseDecimal(text: string, currency: string): Money {
  const match = DECIMAL.exec(text.trim());
  if (!match) throw new InvalidMoneyError(`not a decimal amount: ${JSON.stringify(text)}`);
  const [, sign, whole = '', fraction = ''] = match;
  const exponent = currencyExponent(currency);
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > exponent) {
    throw new InvalidMoneyError(`${text} has more precision than ${currency} allows`);
  }
  const digits = whole + fraction.padEnd(exponent, '0').slice(0, exponent);
  const minor = Number(digits) * (sign ? -1 : 1);
  if (!Number.isSafeInteger(minor)) throw new InvalidMoneyError(`amount out of range: ${text}`);
  return { minor: minor === 0 ? 0 : minor, currency };
}

/**
 * Formats minor units as a plain decimal string ("59.90"). `fractionDigits` may pad beyond the
 * currency's digits (EPG wants "30.0000") but never cut them.
 */
export function formatDecimal(amount: Money, fractionDigits?: number): string {
  const exponent = currencyExponent(amount.currency);
  const width = Math.max(fractionDigits ?? exponent, exponent);
  const digits = Math.abs(amount.minor)
    .toString()
    .padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent).padEnd(width, '0');
  return `${amount.minor < 0 ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

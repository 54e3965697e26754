/**
 * Masking for anything that leaves the process as a log line: secrets by key name, card numbers
 * (Luhn-valid 13–19 digit runs) and e-mail addresses by value, errors reduced to name and message.
 */
const SECRET_KEY = /secret|password|passwd|token|authorization|signature|api[-_]?key|cookie|^hash$|^encrypted$|integritycheck|cvv|cvc/i;
const CARD_CANDIDATE = /\b\d(?:[ -]?\d){12,18}\b/g;
const EMAIL = /([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;

export const REDACTED = '[redacted]';

function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

export function maskText(text: string): string {
  return text
    .replace(CARD_CANDIDATE, (candidate) => {
      const digits = candidate.replace(/[ -]/g, '');
      return luhnValid(digits) ? `****${digits.slice(-4)}` : candidate;
    })
    .replace(EMAIL, (_, first: string, domain: string) => `${first}***@${domain}`);
}

/** A JSON.stringify replacer: use it for every structured log record. */
export function redactForLog(key: string, value: unknown): unknown {
  if (key && SECRET_KEY.test(key) && value !== null && value !== undefined && value !== '') return REDACTED;
  if (typeof value === 'string') return maskText(value);
  if (value instanceof Error) return describeError(value);
  return value;
}

/** What may be said about an error: its class and message, never its stack. */
export function describeError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: maskText(error.message) };
  return { name: 'NonError', message: maskText(String(error)) };
}

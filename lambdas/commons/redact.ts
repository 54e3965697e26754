import { bounded } from './bounded';

/**
 * Masking for anything that leaves the process as a log line: secrets by key name, card numbers
 * (Luhn-valid 13–19 digit runs) and e-mail addresses by value, errors reduced to name and message.
 * Every pass is linear in the text's length, whatever the text: a log line must never cost more
 * CPU than reading it (docs/design.md §2.5).
 */
const SECRET_KEY = /secret|password|passwd|token|authorization|signature|api[-_]?key|cookie|^hash$|^encrypted$|integritycheck|cvv|cvc/i;
const CARD_CANDIDATE = /\b\d(?:[ -]?\d){12,18}\b/g;

/** Longest string value a log record keeps. */
export const MAX_LOG_TEXT = 4_096;
/**
 * Characters masked beyond the cut: more than any card number (37 with separators) or address
 * (320) spans, so whatever starts before the cut is masked whole, never left half readable.
 */
const MASK_MARGIN = 400;

/** RFC 5321 bounds: a local part has at most 64 characters, a domain at most 255. */
const MAX_LOCAL = 64;
const MAX_DOMAIN = 255;

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

const isLetter = (code: number) => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
const isDigit = (code: number) => code >= 48 && code <= 57;
/** `[A-Za-z0-9.-]` */
const isDomainChar = (code: number) => isLetter(code) || isDigit(code) || code === 46 || code === 45;
/** `[A-Za-z0-9._%+-]` */
const isLocalChar = (code: number) => isDomainChar(code) || code === 95 || code === 37 || code === 43;

/**
 * Length of the e-mail domain at the start of `domain`: the longest prefix that is
 * `[A-Za-z0-9.-]+\.[A-Za-z]{2,}`, or 0. The rightmost dot followed by two or more letters ends it.
 */
function domainLength(text: string, start: number, end: number): number {
  for (let dot = end - 1; dot > start; dot--) {
    if (text.charCodeAt(dot) !== 46) continue;
    let letters = 0;
    while (dot + 1 + letters < end && isLetter(text.charCodeAt(dot + 1 + letters))) letters++;
    if (letters >= 2) return dot + 1 + letters - start;
  }
  return 0;
}

/**
 * `jane.doe@example.com` → `j***@example.com`. A scanner rather than one regular expression: a
 * pattern with an unbounded local part backtracks over every start position (quadratic), while
 * here each `@` looks at most 64 characters back and 255 ahead.
 */
function maskEmails(text: string): string {
  let at = text.indexOf('@');
  if (at === -1) return text;
  let out = '';
  let copied = 0;
  while (at !== -1) {
    let local = at;
    while (local > copied && at - local < MAX_LOCAL && isLocalChar(text.charCodeAt(local - 1))) local--;
    let domainEnd = at + 1;
    while (domainEnd < text.length && domainEnd - at - 1 < MAX_DOMAIN && isDomainChar(text.charCodeAt(domainEnd))) domainEnd++;
    const domain = local < at ? domainLength(text, at + 1, domainEnd) : 0;
    if (domain > 0) {
      out += `${text.slice(copied, local)}${text.charAt(local)}***@${text.slice(at + 1, at + 1 + domain)}`;
      copied = at + 1 + domain;
    }
    at = text.indexOf('@', Math.max(at + 1, copied));
  }
  return out + text.slice(copied);
}

export function maskText(text: string): string {
  const cards = text.replace(CARD_CANDIDATE, (candidate) => {
    const digits = candidate.replace(/[ -]/g, '');
    return luhnValid(digits) ? `****${digits.slice(-4)}` : candidate;
  });
  return maskEmails(cards);
}

/** The start of `text` a log line keeps, masked: only that start (and a margin) is ever scanned. */
function loggable(text: string): string {
  if (text.length <= MAX_LOG_TEXT) return maskText(text);
  return bounded(maskText(text.slice(0, MAX_LOG_TEXT + MASK_MARGIN)), MAX_LOG_TEXT, text.length);
}

/** A JSON.stringify replacer: use it for every structured log record. */
export function redactForLog(key: string, value: unknown): unknown {
  if (key && SECRET_KEY.test(bounded(key, 256)) && value !== null && value !== undefined && value !== '') return REDACTED;
  if (typeof value === 'string') return loggable(value);
  if (value instanceof Error) return describeError(value);
  return value;
}

/** What may be said about an error: its class and message (masked and bounded), never its stack. */
export function describeError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: bounded(error.name, 128), message: loggable(error.message) };
  return { name: 'NonError', message: loggable(String(error)) };
}

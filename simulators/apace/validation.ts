import type { Json } from './offers';

/**
 * How Apace checks a create (external.validator.js, express-validator and validator.js defaults):
 * every failed check at once, as `<param>: <message>`, nulls validated like any other value.
 */

// express-validator turns a value into a string before a standard check (null and undefined become '').
export function asText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(asText).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return '[object Object]';
}

const isInt = (value: unknown) => /^[-+]?[0-9]+$/.test(asText(value));
const isNumeric = (value: unknown) => /^[+-]?([0-9]*[.])?[0-9]+$/.test(asText(value));
const isFloat = (value: unknown) => {
  const text = asText(value);
  return !['', '.', '+', '-'].includes(text) && /^[-+]?[0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)?$/.test(text);
};
const isBoolean = (value: unknown) => ['true', 'false', '1', '0'].includes(asText(value));
const isEmail = (value: unknown) => /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/.test(asText(value));
const isMethod = (value: unknown) => typeof value === 'string' && /\b(?:GET|POST|PUT|DELETE)\b/i.test(value);

function isUsDate(value: unknown): boolean {
  const match = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(asText(value));
  if (!match) return false;
  const [month, day, year] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function isIPv4(host: string): boolean {
  const parts = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return parts !== null && parts.slice(1).every((part) => Number(part) <= 255);
}

/** validator.js `isURL()` defaults: http, https or ftp; the host an IP address or a name with a TLD. */
function isUrl(value: unknown): boolean {
  const text = asText(value);
  if (!text || text.length >= 2083 || /[\s<>]/.test(text)) return false;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    return false;
  }
  if (!['http:', 'https:', 'ftp:'].includes(url.protocol)) return false;
  const host = url.hostname;
  if (isIPv4(host) || host.startsWith('[')) return true;
  const labels = host.split('.');
  const tld = labels[labels.length - 1] ?? '';
  return (
    labels.length >= 2 &&
    /^([a-z\u00a1-\uffff]{2,}|xn[a-z0-9-]{2,})$/i.test(tld) &&
    labels.every((label) => /^[a-z\u00a1-\uffff0-9-]{1,63}$/i.test(label) && !label.startsWith('-') && !label.endsWith('-'))
  );
}

function field(body: Json, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Json)[key] : undefined), body);
}

/** external.validator.js `validateNewRefund`: every failed check, as `<param>: <message>`. */
export function validateCreate(body: Json, now: number): string[] {
  const errors: string[] = [];
  const check = (param: string, value: unknown, valid: boolean, message = 'Invalid value') => {
    if (!valid) errors.push(`${param}: ${message}`);
  };
  // Optional means absent: a null is validated like any other value.
  const optional = (param: string, test: (value: unknown) => boolean, message?: string, value = field(body, param)) => {
    if (value !== undefined) check(param, value, test(value), message);
  };
  const required = (param: string, test: (value: unknown) => boolean, message?: string, value = field(body, param)) =>
    check(param, value, test(value), message);
  const isString = (value: unknown) => typeof value === 'string';

  required('card_last_four', isInt, 'Please provide an integer for cardLastFour');
  optional('customer', (value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'Please provide an object for customer');
  optional('customer.email', isEmail, 'Please provide an email for customer.email');
  optional('customer.first_name', isString, 'Please provide a string for customer.first_name');
  optional('customer.last_name', isString, 'Please provide a string for customer.last_name');
  required('order_id', isString, 'Please provide a valid string for order_id');
  optional('order_url', isUrl, 'Please provide a valid url for order_url');
  optional('order_date', isUsDate, 'Please provide a valid date form order_date in MM/DD/YYYY format');
  optional(
    'expiration_date',
    (value) => {
      const date = new Date(value as string);
      return !Number.isNaN(date.getTime()) && Math.floor(date.getTime() / 1000) > Math.floor(now / 1000);
    },
    'Please provide valid expiration_date',
  );
  optional('is_partial_refund', isBoolean, 'Please provide a valid number for is_partial_refund');
  required('refund_amount', isNumeric);
  if (isNumeric(body.refund_amount)) required('refund_amount', (value) => Number.parseFloat(asText(value)) !== 0, 'Please provide a valid number for amount');
  required('items', Array.isArray, 'Please provide an array of items');
  if (Array.isArray(body.items)) {
    body.items.forEach((item: unknown, index) => {
      const at = (name: string) => ({ param: `items[${index}].${name}`, value: item && typeof item === 'object' ? (item as Json)[name] : undefined });
      const each = (name: string, test: (value: unknown) => boolean, message: string | undefined, isOptional: boolean) => {
        const { param, value } = at(name);
        if (isOptional) optional(param, test, message, value);
        else required(param, test, message, value);
      };
      each('item_id', isString, 'Please provide valid string of items.item_id', false);
      each('sku', isString, 'Please provide a string for items.sku', true);
      each('item_url', isUrl, 'Please provide a valid url for items.url', true);
      each('item_image_url', isUrl, 'Please provide a valid url for items.url', true);
      each('display_name', isString, 'Please provide a valid string for items.display_name', false);
      each('return_date', isUsDate, undefined, true);
      each('unit_price', isFloat, 'Please provide a valid float for unit_price', true);
      each('return_qty', isInt, 'Please provide a valid integer for items.return_qty', true);
    });
  }
  required('refund_verification.url', isUrl, 'Please provide a valid url for refund_verification.url');
  optional('refund_verification.method', isMethod, 'Please provide a valid value of refund_verification.method one of GET|POST|PUT|DELETE');
  required('refund_notification.webhook_url', isUrl, 'Please provide a valid url for refund_notification.webhook_url');
  optional('refund_notification.redirect_url', isUrl, 'Please provide a valid url for refund_notification.redirect_url');
  optional('refund_notification.redirect_method', isMethod, 'Please provide a valid value of refund_notification.redirect_method one of GET|POST|PUT|DELETE');
  return errors;
}

export const optionalText = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
export const floatOrNull = (value: unknown) => (value === undefined || value === null ? null : Number.parseFloat(asText(value)));

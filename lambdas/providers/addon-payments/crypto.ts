import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigurationError } from '../../commons/config';
import { formatDecimal, type Money } from '../../domain/money';

/**
 * EPG's H2H request encryption (docs/providers.md §4), byte for byte what the official SDKs send:
 * the fields as a `k=v&k=v` string, URL-encoded like Java's URLEncoder with `=&;:,` put back,
 * AES-256-CBC/PKCS7 under the merchant password, and a SHA-256 integrity check of the clear bytes.
 */
export interface RebateFields {
  readonly amount: Money;
  readonly merchantId: string;
  readonly paymentSolution: string;
  readonly transactionId: string;
  readonly merchantTransactionId: string;
  readonly description?: string;
}

/** The order the SDK writes the fields in; absent ones are left out. */
const CLEAR_FIELD_ORDER = ['amount', 'merchantId', 'paymentSolution', 'transactionId', 'merchantTransactionId', 'description'] as const;

export interface EncryptedRequest {
  readonly clear: string;
  /** Base64 of the AES-256-CBC ciphertext. */
  readonly encrypted: string;
  /** Lowercase hex SHA-256 of the clear string's bytes. */
  readonly integrityCheck: string;
  /** Base64 of the 16-byte IV, sent in the `iv` header. */
  readonly iv: string;
}

export const IV_BYTES = 16;
const KEY_BYTES = 32;
// The SDK restores these after encoding the whole string, so they travel unencoded even inside values.
const PUT_BACK: Readonly<Record<string, string>> = { '%3D': '=', '%26': '&', '%3B': ';', '%3A': ':', '%2C': ',' };

/** Java's `URLEncoder.encode(text, UTF_8)`: only `A-Z a-z 0-9 . - * _` stay literal, space becomes `+`. */
export function javaUrlEncode(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()~]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

export function clearString(fields: RebateFields): string {
  const values: Record<(typeof CLEAR_FIELD_ORDER)[number], string | undefined> = {
    amount: formatDecimal(fields.amount, 4),
    merchantId: fields.merchantId,
    paymentSolution: fields.paymentSolution,
    transactionId: fields.transactionId,
    merchantTransactionId: fields.merchantTransactionId,
    description: fields.description,
  };
  const query = CLEAR_FIELD_ORDER.filter((name) => values[name] !== undefined)
    .map((name) => `${name}=${values[name]}`)
    .join('&');
  return javaUrlEncode(query).replace(/%(?:3D|26|3B|3A|2C)/g, (escape) => PUT_BACK[escape]!);
}

/** The AES-256 key: the merchant password's 32 bytes (the simulator decrypts with it too). */
export function merchantKey(merchantPassword: string): Buffer {
  const key = Buffer.from(merchantPassword, 'utf8');
  if (key.length !== KEY_BYTES) throw new ConfigurationError(`the EPG merchant password must be ${KEY_BYTES} bytes (AES-256), got ${key.length}`);
  return key;
}

export function integrityCheckOf(clear: string): string {
  return createHash('sha256').update(clear, 'utf8').digest('hex');
}

export function encryptRebate(fields: RebateFields, merchantPassword: string, iv: Buffer = randomBytes(IV_BYTES)): EncryptedRequest {
  if (iv.length !== IV_BYTES) throw new RangeError(`the IV must be ${IV_BYTES} bytes`);
  const clear = clearString(fields);
  const cipher = createCipheriv('aes-256-cbc', merchantKey(merchantPassword), iv);
  const ciphertext = Buffer.concat([cipher.update(clear, 'utf8'), cipher.final()]);
  return { clear, encrypted: ciphertext.toString('base64'), integrityCheck: integrityCheckOf(clear), iv: iv.toString('base64') };
}

import { createHash } from 'node:crypto';
import { sameBytes } from '../../commons/constant-time';
import { BadRequestError } from '../../commons/http-errors';
import * as z from 'zod/mini';
import { parseOrReject } from '../../commons/validation';
import type { PayProSecret } from './schemas';

/**
 * Verification of PayPro's IPNs (docs/providers.md §5): form-encoded POSTs from a documented set of
 * source addresses, authenticated by `HASH` = MD5(ORDER_ID + ipnSecretKey) and `SIGNATURE` =
 * SHA-256(ORDER_ID + ORDER_STATUS + ORDER_TOTAL_AMOUNT + CUSTOMER_EMAIL + ipnValidationKey +
 * TEST_MODE + IPN_TYPE_NAME). Both must match: the HASH alone covers no amount or status.
 */

/** The HASH PayPro documents for test orders: MD5("1"). */
export const TEST_ORDER_HASH = createHash('md5').update('1').digest('hex');

const decimal = z.string().check(z.regex(/^-?\d{1,15}(\.\d{1,6})?$/));
const flag = z.enum(['0', '1']);
const text = (max: number) => z.string().check(z.maxLength(max));

/** The IPN fields refund-relay reads; PayPro sends many more, which are dropped. */
export const payProIpnSchema = z.object({
  ORDER_ID: z.string().check(z.regex(/^\d{1,15}$/)),
  ORDER_STATUS: text(64),
  ORDER_STATUS_ID: z.optional(z.string().check(z.regex(/^\d{1,4}$/))),
  ORDER_TOTAL_AMOUNT: decimal,
  ORDER_CURRENCY_CODE: z.string().check(z.regex(/^[A-Z]{3}$/)),
  ORDER_REFUNDED: z.optional(text(16)),
  IPN_TYPE_ID: z.string().check(z.regex(/^\d{1,4}$/)),
  IPN_TYPE_NAME: z.string().check(z.minLength(1), z.maxLength(64)),
  IS_RESENT: z.optional(flag),
  TEST_MODE: flag,
  /** "PayPro Global" or "Vendor"; sent for types 2 and 5 only. */
  REFUND_ISSUED_BY: z.optional(text(64)),
  /** The refund reason: for refunds we asked for, it carries our refund id (see client.refundReason). */
  ACTION_REASON: z.optional(text(1000)),
  /** Signed, so kept exactly as sent; never logged. */
  CUSTOMER_EMAIL: text(320),
  HASH: z.string().check(z.regex(/^[0-9a-fA-F]{32}$/)),
  SIGNATURE: z.string().check(z.regex(/^[0-9a-fA-F]{64}$/)),
});

export type PayProIpn = z.infer<typeof payProIpnSchema>;

/** Parses an `application/x-www-form-urlencoded` IPN body; a field sent twice is refused as ambiguous. */
export function parsePayProIpn(body: string | Buffer): PayProIpn {
  const fields: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    if (Object.hasOwn(fields, name)) throw new BadRequestError(`IPN field ${name} is repeated`, 'repeated_field');
    fields[name] = value;
  }
  return parseOrReject(payProIpnSchema, fields, 'PayPro IPN');
}

export function ipnHash(orderId: string, ipnSecretKey: string): string {
  return createHash('md5')
    .update(orderId + ipnSecretKey, 'utf8')
    .digest('hex');
}

export type SignedIpnFields = Pick<PayProIpn, 'ORDER_ID' | 'ORDER_STATUS' | 'ORDER_TOTAL_AMOUNT' | 'CUSTOMER_EMAIL' | 'TEST_MODE' | 'IPN_TYPE_NAME'>;

export function ipnSignature(fields: SignedIpnFields, ipnValidationKey: string): string {
  const signed =
    fields.ORDER_ID + fields.ORDER_STATUS + fields.ORDER_TOTAL_AMOUNT + fields.CUSTOMER_EMAIL + ipnValidationKey + fields.TEST_MODE + fields.IPN_TYPE_NAME;
  return createHash('sha256').update(signed, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests of the same algorithm. */
function sameDigest(givenHex: string, expectedHex: string): boolean {
  return sameBytes(Buffer.from(givenHex, 'hex'), Buffer.from(expectedHex, 'hex'));
}

export type IpnCheck = 'valid' | 'bad_hash' | 'bad_signature';

/**
 * Checks HASH and SIGNATURE against one version of the secret. A test order's HASH is MD5("1")
 * (documented), accepted only when the caller allows test mode; the SIGNATURE is always required.
 */
export function checkIpn(ipn: PayProIpn, secret: Pick<PayProSecret, 'ipnSecretKey' | 'ipnValidationKey'>, allowTestMode: boolean): IpnCheck {
  const hashOk =
    sameDigest(ipn.HASH, ipnHash(ipn.ORDER_ID, secret.ipnSecretKey)) || (allowTestMode && ipn.TEST_MODE === '1' && sameDigest(ipn.HASH, TEST_ORDER_HASH));
  const signatureOk = sameDigest(ipn.SIGNATURE, ipnSignature(ipn, secret.ipnValidationKey));
  if (!hashOk) return 'bad_hash';
  return signatureOk ? 'valid' : 'bad_signature';
}

const REASON_REFUND_ID = /\(refund ([^\s()]{1,256})\)$/;

/**
 * Our refund id from an IPN's ACTION_REASON, when the reason is one `client.refundReason` wrote
 * (`<description> (refund <refund id>)`).
 */
export function refundIdFromReason(reason: string): string | undefined {
  return REASON_REFUND_ID.exec(reason.trim())?.[1];
}

/**
 * The inbox key of one IPN delivery: its order, type and a hash of its fields in name order
 * without IS_RESENT, so PayPro's resends (IS_RESENT=1) land on the first delivery's record while
 * the one-IPN-per-product posts of an order stay apart.
 */
export function ipnDeliveryKey(body: string): string {
  const fields = [...new URLSearchParams(body)].filter(([name]) => name !== 'IS_RESENT').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const get = (name: string) => fields.find(([field]) => field === name)?.[1] ?? '';
  const digest = createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 32);
  return `${get('ORDER_ID')}#${get('IPN_TYPE_ID')}#${digest}`;
}

/** IPN types that settle a card reversal: 2 OrderRefunded (full) and 5 OrderPartiallyRefunded. */
export function reversalSettlement(ipn: Pick<PayProIpn, 'IPN_TYPE_ID'>): 'full' | 'partial' | undefined {
  if (ipn.IPN_TYPE_ID === '2') return 'full';
  if (ipn.IPN_TYPE_ID === '5') return 'partial';
  return undefined;
}

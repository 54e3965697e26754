import { createHmac } from 'node:crypto';
import { sameBytes } from '../../commons/constant-time';

/** Header Apace signs its webhooks with: hex HMAC-SHA256 of the raw body, keyed by our API secret. */
export const APACE_SIGNATURE_HEADER = 'x-request-signature-sha-256';

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

export function signApaceBody(apiSecret: string, body: Buffer | string): string {
  return createHmac('sha256', apiSecret).update(body).digest('hex');
}

/** A signature header's bytes, or undefined unless it is a hex SHA-256. */
export function signatureBytes(header: string): Buffer | undefined {
  return HEX_SHA256.test(header) ? Buffer.from(header, 'hex') : undefined;
}

/** Whether `given` is the HMAC-SHA256 of exactly these bytes under `apiSecret` (constant time). */
export function signatureMatches(apiSecret: string, given: Buffer, body: Buffer): boolean {
  return sameBytes(given, createHmac('sha256', apiSecret).update(body).digest());
}

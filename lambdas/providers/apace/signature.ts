import { createHmac } from 'node:crypto';
import { sameBytes } from '../../commons/constant-time';
import { UnauthorizedError } from '../../commons/errors';
import type { SecretReader } from '../../commons/secrets';
import type { ApaceSecret } from './schemas';

/** Header Apace signs its webhooks with: hex HMAC-SHA256 of the raw body, keyed by our API secret. */
export const APACE_SIGNATURE_HEADER = 'x-request-signature-sha-256';

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

export function signApaceBody(apiSecret: string, body: Buffer | string): string {
  return createHmac('sha256', apiSecret).update(body).digest('hex');
}

/** Throws 401 unless the header is a valid signature of exactly these bytes. */
export async function verifyApaceSignature(secrets: SecretReader<ApaceSecret>, header: string | undefined, body: Buffer): Promise<void> {
  if (!header) throw new UnauthorizedError(`${APACE_SIGNATURE_HEADER} header is missing`, 'missing_signature');
  if (!HEX_SHA256.test(header)) throw new UnauthorizedError(`${APACE_SIGNATURE_HEADER} is not a hex SHA-256 HMAC`, 'invalid_signature');
  const given = Buffer.from(header, 'hex');
  const valid = await secrets.verifyWithRotation((secret) => sameBytes(given, createHmac('sha256', secret.apiSecret).update(body).digest()));
  if (!valid) throw new UnauthorizedError('signature does not match the request body', 'invalid_signature');
}

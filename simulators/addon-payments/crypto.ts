import { createDecipheriv } from 'node:crypto';
import { ConfigurationError } from '../../lambdas/commons/config';
import { IV_BYTES, merchantKey } from '../../lambdas/providers/addon-payments/crypto';

/**
 * EPG's side of the H2H encryption (lambdas/providers/addon-payments/crypto.ts encrypts): what the
 * simulator needs to read a request the connector sent.
 */

/** The inverse of the SDK's encoding, as Java's `URLDecoder` reads it (`+` is a space). */
export function javaUrlDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

export class DecryptionError extends Error {
  override readonly name = 'DecryptionError';
}

/** The clear string of an encrypted request (the simulator's side), or DecryptionError. */
export function decryptRebate(encrypted: string, ivBase64: string, merchantPassword: string): string {
  const iv = Buffer.from(ivBase64, 'base64');
  if (iv.length !== IV_BYTES) throw new DecryptionError(`iv must be ${IV_BYTES} bytes in base64`);
  try {
    const decipher = createDecipheriv('aes-256-cbc', merchantKey(merchantPassword), iv);
    const clear = Buffer.concat([decipher.update(Buffer.from(encrypted, 'base64')), decipher.final()]);
    return new TextDecoder('utf-8', { fatal: true }).decode(clear);
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw new DecryptionError('encrypted does not decrypt under the merchant password');
  }
}

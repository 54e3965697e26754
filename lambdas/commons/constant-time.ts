import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The one place inbound credentials are compared (tokens, passwords, signatures, MACs), always in
 * constant time, so no caller leaks through timing how much of a guess was right.
 */

/** Two secrets of any length: both are hashed to 32 bytes first, so even their lengths do not show. */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Two byte strings of public length (a MAC, a digest): different lengths are simply unequal. */
export function sameBytes(given: Uint8Array, expected: Uint8Array): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

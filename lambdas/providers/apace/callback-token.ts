import { createHmac } from 'node:crypto';
import { sameBytes } from '../../commons/constant-time';
import type { ApaceSecret } from './schemas';

/**
 * Tokens in the callback URLs we give Apace (it calls them with no auth headers, docs/design.md §3):
 * `<keyId>.<expiry epoch s>.<base64url HMAC-SHA256>` over purpose, order id, refund id and expiry.
 * The key id lets two keys verify at once, so keys rotate without breaking live offers.
 */
export type CallbackPurpose = 'verify' | 'notify';

const TOKEN = /^([A-Za-z0-9_-]{1,16})\.(\d{10})\.([A-Za-z0-9_-]{43})$/;

function mac(key: string, purpose: CallbackPurpose, orderId: string, refundId: string, expiresAt: number): Buffer {
  return createHmac('sha256', key).update(`${purpose}\n${orderId}\n${refundId}\n${expiresAt}`).digest();
}

export function signCallbackToken(secret: ApaceSecret, purpose: CallbackPurpose, orderId: string, refundId: string, expiresAtMs: number): string {
  const key = secret.callbackKeys[secret.callbackKeyId];
  if (!key) throw new Error('callbackKeyId names no key');
  const expiresAt = Math.floor(expiresAtMs / 1000);
  return `${secret.callbackKeyId}.${expiresAt}.${mac(key, purpose, orderId, refundId, expiresAt).toString('base64url')}`;
}

function tokenValid(secret: ApaceSecret, parts: RegExpExecArray, purpose: CallbackPurpose, orderId: string, refundId: string): boolean {
  const [, keyId = '', expiry = '', signature = ''] = parts;
  // Own keys only: a key id such as "constructor" must not reach the object's prototype.
  const key = Object.hasOwn(secret.callbackKeys, keyId) ? secret.callbackKeys[keyId] : undefined;
  if (typeof key !== 'string') return false;
  const expected = mac(key, purpose, orderId, refundId, Number(expiry));
  const given = Buffer.from(signature, 'base64url');
  return sameBytes(given, expected);
}

/**
 * Whether `token` was issued by us for this purpose, order and refund and has not expired:
 * `missing`, `malformed`, `expired`, or a check of its MAC against one version of the secret.
 */
export function readCallbackToken(
  token: string | undefined,
  nowMs: number,
):
  | { problem: 'missing' | 'malformed' | 'expired' }
  | { matches: (secret: ApaceSecret, purpose: CallbackPurpose, orderId: string, refundId: string) => boolean } {
  if (!token) return { problem: 'missing' };
  const parts = TOKEN.exec(token);
  if (!parts) return { problem: 'malformed' };
  if (Number(parts[2]) * 1000 <= nowMs) return { problem: 'expired' };
  return { matches: (secret, purpose, orderId, refundId) => tokenValid(secret, parts, purpose, orderId, refundId) };
}

export interface CallbackUrls {
  readonly verificationUrl: string;
  readonly notificationUrl: string;
}

/** The two URLs handed to Apace for one refund, each carrying its own token (docs/design.md §3). */
export function callbackUrls(publicBaseUrl: string, secret: ApaceSecret, orderId: string, refundId: string, tokenExpiresAtMs: number): CallbackUrls {
  const base = `${publicBaseUrl.replace(/\/+$/, '')}/apace/orders/${encodeURIComponent(orderId)}/refunds/${encodeURIComponent(refundId)}`;
  const url = (purpose: CallbackPurpose, leaf: string) =>
    `${base}/${leaf}?auth_token=${signCallbackToken(secret, purpose, orderId, refundId, tokenExpiresAtMs)}`;
  return { verificationUrl: url('verify', 'verification'), notificationUrl: url('notify', 'notification') };
}

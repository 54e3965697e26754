import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SecretName } from '../lambdas/providers/registry';

const random = (bytes = 24) => randomBytes(bytes).toString('base64url');

/**
 * The local stand-in for Secrets Manager: one JSON object per provider, the same keys as the AWS
 * secrets (README, "Secrets"). Generated with random values so nothing real is ever needed locally.
 */
export function generateLocalSecrets(): Record<SecretName, Record<string, unknown>> {
  return {
    apace: { publicId: `local-${random(6)}`, apiSecret: random(), callbackKeys: { k1: random(32) }, callbackKeyId: 'k1' },
    // 24 random bytes are exactly 32 base64url characters: the AES-256 key EPG derives from the password.
    addonPayments: { merchantId: '123456', merchantPassword: random(24) },
    paypro: { vendorAccountId: 123456, apiSecretKey: random(), ipnSecretKey: random(), ipnValidationKey: random() },
    optty: { clientId: `local-${random(6)}`, clientSecret: random(), merchantId: 'local-merchant', notificationSecret: random() },
    ap21: { username: 'refund-relay', password: random(), pushApiKey: random() },
    refundid: { bearerToken: random(32), apiKey: random() },
  };
}

/** Reads the secrets file, creating it (mode 600) on first start. */
export async function ensureLocalSecrets(path: string): Promise<{ created: boolean; secrets: Record<string, unknown> }> {
  if (existsSync(path)) return { created: false, secrets: JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown> };
  await mkdir(dirname(path), { recursive: true });
  const secrets = generateLocalSecrets();
  await writeFile(path, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return { created: true, secrets };
}

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PROVIDER_IDS, secretNameOf, type SecretName } from '../lambdas/providers/registry';
import { SIMULATORS } from '../simulators/registry';

/**
 * The local stand-in for Secrets Manager: one JSON object per provider, the same keys as the AWS
 * secrets (README, "Secrets"). Generated with random values (each provider's `localSecret` in
 * simulators/registry.ts) so nothing real is ever needed locally.
 */
export function generateLocalSecrets(): Record<SecretName, Record<string, unknown>> {
  return Object.fromEntries(PROVIDER_IDS.map((id) => [secretNameOf(id), SIMULATORS[id].localSecret()])) as Record<SecretName, Record<string, unknown>>;
}

/** Reads the secrets file, creating it (mode 600) on first start. */
export async function ensureLocalSecrets(path: string): Promise<{ created: boolean; secrets: Record<string, unknown> }> {
  if (existsSync(path)) return { created: false, secrets: JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown> };
  await mkdir(dirname(path), { recursive: true });
  const secrets = generateLocalSecrets();
  await writeFile(path, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return { created: true, secrets };
}

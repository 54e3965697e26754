import { readFile } from 'node:fs/promises';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { RuntimeConfig } from './config';
import type * as z from 'zod/mini';
import { describeIssues } from './validation';
import type { SecretName } from '../providers/registry';

/** The port: where secret JSON comes from. Secrets Manager in AWS, `.local/secrets.json` locally. */
export interface SecretSource {
  get(name: SecretName, options: { forceFetch: boolean }): Promise<unknown>;
}

/** The one call SecretsManagerSource makes: a port, so tests can stand in for the client. */
export type SecretsManagerPort = Pick<SecretsManagerClient, 'send'>;

/**
 * Secrets Manager, cached per container for `maxAgeSeconds` (one GetSecretValue per secret per
 * container and max age; concurrent first reads share one call). `forceFetch` bypasses the cache
 * after a rotation. The secret string is JSON (README, "Secrets").
 */
export class SecretsManagerSource implements SecretSource {
  private readonly cache = new Map<SecretName, { value: Promise<unknown>; expiresAt: number }>();

  constructor(
    private readonly client: SecretsManagerPort,
    private readonly prefix: string,
    private readonly maxAgeSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(name: SecretName, { forceFetch }: { forceFetch: boolean }): Promise<unknown> {
    const cached = this.cache.get(name);
    if (!forceFetch && cached && cached.expiresAt > this.now()) return cached.value;
    const value = this.fetch(name);
    const entry = { value, expiresAt: this.now() + this.maxAgeSeconds * 1000 };
    this.cache.set(name, entry);
    // A failed read is not cached: the next call asks again.
    value.catch(() => {
      if (this.cache.get(name) === entry) this.cache.delete(name);
    });
    return value;
  }

  private async fetch(name: SecretName): Promise<unknown> {
    const answer = await this.client.send(new GetSecretValueCommand({ SecretId: `${this.prefix}${name}` }));
    const text = answer.SecretString ?? (answer.SecretBinary ? Buffer.from(answer.SecretBinary).toString('utf8') : undefined);
    if (text === undefined) throw new SecretUnavailableError(`secret ${name} has no value`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Never the text itself: it is the secret.
      throw new SecretUnavailableError(`secret ${name} is not JSON`);
    }
  }
}

export class LocalFileSource implements SecretSource {
  private cached: Record<string, unknown> | undefined;

  constructor(private readonly path: string) {}

  async get(name: SecretName, { forceFetch }: { forceFetch: boolean }): Promise<unknown> {
    if (!this.cached || forceFetch) this.cached = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, unknown>;
    return this.cached[name];
  }
}

export class SecretUnavailableError extends Error {
  override readonly name = 'SecretUnavailableError';
}

const REFRESH_INTERVAL_MS = 30_000;

/**
 * A typed, validated view of one secret. `refresh()` re-reads it after a signature or token check
 * failed (the secret may have rotated), at most once per 30 s, so forged requests cannot turn
 * into a flood of Secrets Manager calls.
 */
export class SecretReader<T> {
  private lastRaw: unknown;
  private lastParsed: T | undefined;
  private lastRefreshAt = 0;

  constructor(
    private readonly source: SecretSource,
    private readonly name: SecretName,
    private readonly schema: z.ZodMiniType<T>,
  ) {}

  async get(): Promise<T> {
    return this.parse(await this.source.get(this.name, { forceFetch: false }));
  }

  /** The re-read secret, or undefined when a refresh happened too recently to try again. */
  async refresh(now = Date.now()): Promise<T | undefined> {
    if (now - this.lastRefreshAt < REFRESH_INTERVAL_MS) return undefined;
    this.lastRefreshAt = now;
    return this.parse(await this.source.get(this.name, { forceFetch: true }));
  }

  /** Runs `check` with the cached secret, and once more with a refreshed one if it fails. */
  async verifyWithRotation(check: (secret: T) => boolean): Promise<boolean> {
    if (check(await this.get())) return true;
    const fresh = await this.refresh();
    return fresh !== undefined && check(fresh);
  }

  private parse(raw: unknown): T {
    if (raw === this.lastRaw && this.lastParsed !== undefined) return this.lastParsed;
    const result = this.schema.safeParse(raw);
    // Name the keys that are wrong, never their values.
    if (!result.success) throw new SecretUnavailableError(`secret ${this.name} is malformed: ${describeIssues(result.error.issues)}`);
    this.lastRaw = raw;
    this.lastParsed = result.data;
    return result.data;
  }
}

export function createSecretSource(config: RuntimeConfig): SecretSource {
  if (config.SECRETS_SOURCE === 'file') return new LocalFileSource(config.LOCAL_SECRETS_FILE);
  return new SecretsManagerSource(new SecretsManagerClient({}), config.secretsPrefix, config.SECRETS_MAX_AGE_SECONDS);
}

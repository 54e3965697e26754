import { SecretReader, type SecretSource } from '../../lambdas/commons/secrets';
import type { SecretName } from '../../lambdas/providers/registry';
import type * as z from 'zod/mini';

/**
 * Secrets held in memory, cached like Secrets Manager: a value changed with `set` (a rotation)
 * is seen only by a forced read.
 */
export class MemorySecretSource implements SecretSource {
  readonly reads: { name: SecretName; forceFetch: boolean }[] = [];
  private readonly cached = new Map<SecretName, unknown>();

  constructor(private readonly values: Partial<Record<SecretName, unknown>>) {}

  set(name: SecretName, value: unknown): void {
    this.values[name] = value;
  }

  async get(name: SecretName, options: { forceFetch: boolean }): Promise<unknown> {
    this.reads.push({ name, forceFetch: options.forceFetch });
    if (options.forceFetch || !this.cached.has(name)) this.cached.set(name, this.values[name]);
    return this.cached.get(name);
  }
}

export function secretReader<T>(name: SecretName, value: T, schema: z.ZodMiniType<T>): { source: MemorySecretSource; reader: SecretReader<T> } {
  const source = new MemorySecretSource({ [name]: value });
  return { source, reader: new SecretReader(source, name, schema) };
}

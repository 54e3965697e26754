import { createDocumentClient } from '../commons/clients/dynamodb';
import { loadConfig, type RuntimeConfig } from '../commons/config';
import { SecretReader, createSecretSource, type SecretSource } from '../commons/secrets';
import type { SecretName } from '../providers/registry';
import type * as z from 'zod/mini';
import { DynamoOrderStore } from '../store/dynamodb-order-store';
import type { OrderStore } from '../store/order-store';

/**
 * The composition root: config, clients and secret caches built once per container (at module
 * load, in the Lambda init phase) and shared by every invocation.
 */
export interface Runtime {
  readonly config: RuntimeConfig;
  readonly store: OrderStore;
  readonly secrets: SecretSource;
  secret: <T>(name: SecretName, schema: z.ZodMiniType<T>) => SecretReader<T>;
  readonly claimWindowMs: number;
  /** `APACE_PROCESSED_WITHIN_SECONDS` in ms: when a refund paid at Apace's `pending` is followed up. */
  readonly apaceProcessedWithinMs: number;
}

let instance: Runtime | undefined;

export function runtime(): Runtime {
  instance ??= createRuntime();
  return instance;
}

/** A runtime for the given environment; handlers share the one `runtime()` builds per container. */
export function createRuntime(env: NodeJS.ProcessEnv = process.env): Runtime {
  const config = loadConfig(env);
  const secrets = createSecretSource(config);
  const readers = new Map<SecretName, SecretReader<unknown>>();
  return {
    config,
    store: new DynamoOrderStore(createDocumentClient(config.DYNAMODB_ENDPOINT), config.TABLE_NAME),
    secrets,
    secret: <T>(name: SecretName, schema: z.ZodMiniType<T>): SecretReader<T> => {
      let reader = readers.get(name);
      if (!reader) readers.set(name, (reader = new SecretReader(secrets, name, schema)));
      return reader as SecretReader<T>;
    },
    claimWindowMs: config.APACE_CLAIM_WINDOW_SECONDS * 1000,
    apaceProcessedWithinMs: config.APACE_PROCESSED_WITHIN_SECONDS * 1000,
  };
}

import type { HttpRequest } from '../commons/http';
import type { SecretReader } from '../commons/secrets';
import type * as z from 'zod/mini';
import type { ProviderId } from './registry';
import type { ReversalConnector } from './reversal';

/**
 * What a provider's folder offers the rest of refund-relay, through its `provider.ts` (listed in
 * ./modules.ts; its identity is one line of ./registry.ts). The composition roots (the dispatcher,
 * the route handlers, the local runtime) read these entries and name no provider themselves.
 */

/** A typed view of the provider's secret (Secrets Manager `<prefix><secret name>`, or the local secrets file). */
export type SecretFor = <T>(schema: z.ZodMiniType<T>) => SecretReader<T>;

/**
 * How every provider's calls to us are authenticated: one shape for all (docs/design.md §3). Its
 * `settings` are read from the environment once per container (source allowlists, test mode);
 * `verify` returns when the request is the provider's and throws `UnauthorizedError` (401) or
 * `ForbiddenError` (403) otherwise, re-reading the secret once when a credential does not match
 * (it may have just rotated). Each check is made here and nowhere else.
 */
export interface InboundVerifier<Secret, Settings> {
  readonly provider: ProviderId;
  readonly secretSchema: z.ZodMiniType<Secret>;
  loadSettings(env: NodeJS.ProcessEnv): Settings;
  verify(request: HttpRequest, secret: SecretReader<Secret>, settings: Settings): Promise<void>;
}

/**
 * A card-reversal provider's connector. `loadSettings` runs when the dispatcher is built (a wrong
 * setting stops the container at start); `connect` loads the connector's code on first use, a chunk
 * of its own in the Lambda bundle (lib/bundling.ts), so an invocation loads only the providers it pays through.
 */
export interface ReversalEntry<Settings> {
  /** Its base-URL variable: a stage that sets it reverses this provider's payments (one that does not sends them to manual review). */
  readonly enabledBy: string;
  loadSettings(env: NodeJS.ProcessEnv): Settings;
  /** The longest one operation may take (a call, plus a token request where one may be needed first). */
  callTimeoutMs(settings: Settings): number;
  connect(settings: Settings, secret: SecretFor): Promise<ReversalConnector>;
}

export interface ProviderModule<Id extends ProviderId = ProviderId> {
  readonly id: Id;
  /** The shape of its secret (its `schemas.ts`), loaded when asked for: the preflight checks a stage's secrets against it. */
  readonly secretSchema: () => Promise<z.ZodMiniType>;
  /**
   * The check of its calls to us (its `inbound.ts`), loaded when asked for. A route imports its own
   * provider's `inbound.ts` directly, so its bundle holds only that one; this handle serves code that
   * works over every provider (test/providers/fake-provider.test.ts).
   */
  readonly inbound: () => Promise<InboundVerifier<unknown, unknown>>;
  /** For a card-reversal provider: its connector. */
  readonly reversal?: ReversalEntry<unknown>;
}

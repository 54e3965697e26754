import type { HttpRequest } from '../commons/http';
import { lazy } from '../commons/lazy';
import type { SecretReader } from '../commons/secrets';
import type { InboundVerifier } from '../providers/provider-module';
import { secretNameOf } from '../providers/registry';
import type { Runtime } from './runtime';

/**
 * A route's check of its caller (the provider folder's `inbound.ts`): the provider's secret, shared
 * with anything else in this container that reads it, and its settings, read on the first request
 * (a stage without them answers 500 on this route instead of failing every function's start).
 */
export function inboundCheck<Secret, Settings>(
  rt: Pick<Runtime, 'secret'>,
  verifier: InboundVerifier<Secret, Settings>,
  env: NodeJS.ProcessEnv = process.env,
): { readonly secret: SecretReader<Secret>; verify(request: HttpRequest): Promise<void> } {
  const secret = rt.secret(secretNameOf(verifier.provider), verifier.secretSchema);
  const settings = lazy(() => verifier.loadSettings(env));
  return { secret, verify: (request) => verifier.verify(request, secret, settings()) };
}

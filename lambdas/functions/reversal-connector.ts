import type * as z from 'zod/mini';
import type { ProviderModule } from '../providers/provider-module';
import { secretNameOf, type PaymentProvider } from '../providers/registry';
import { loadedOnFirstUse, type ReversalConnector } from '../providers/reversal';
import type { Runtime } from './runtime';

/**
 * A provider's card-reversal connector, built from its module (lambdas/providers/<id>/provider.ts):
 * its settings read now (a wrong one fails here), its code loaded when it is first asked for
 * something, a chunk of its own in the Lambda bundle (lib/bundling.ts). Undefined when the provider
 * reverses no cards or the stage does not set its base URL.
 */
export function reversalConnector(
  rt: Pick<Runtime, 'secret'>,
  { id, reversal }: ProviderModule,
  env: NodeJS.ProcessEnv = process.env,
): ReversalConnector | undefined {
  if (!reversal || !env[reversal.enabledBy]) return undefined;
  const settings = reversal.loadSettings(env);
  const secret = <T>(schema: z.ZodMiniType<T>) => rt.secret(secretNameOf(id), schema);
  return loadedOnFirstUse(id as PaymentProvider, () => reversal.connect(settings, secret));
}

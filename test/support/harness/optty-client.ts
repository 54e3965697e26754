import type { ReversalRequest } from '../../../lambdas/providers/reversal';
import { OpttyConnector } from '../../../lambdas/providers/optty/client';
import { loadOpttyConfig } from '../../../lambdas/providers/optty/config';
import { opttySecretSchema, type OpttySecret } from '../../../lambdas/providers/optty/schemas';
import { createOpttySimulators, type OpttySimulators } from '../../../simulators/optty/simulator';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';
import { secretReader, type MemorySecretSource } from '../memory-secrets';

const SECRET: OpttySecret = { clientId: 'relay-client', clientSecret: 'optty-client-secret-value', merchantId: 'merchant-7' };
const TIMEOUT_MS = 700;

/**
 * Optty's refund API and token endpoint simulated on loopback (60 orders, OPT-1000…OPT-1059, each
 * captured 24.98 AUD), and our connector pointed at them on a clock the test moves. The host's
 * dice stay at 0.25, so a reset or hang strikes after the simulator acted.
 */
export interface OpttyClientWorld {
  readonly host: SimulatorHost;
  readonly optty: OpttySimulators;
  readonly secret: OpttySecret;
  readonly timeoutMs: number;
  readonly clock: { ms: number };
  /** A connector reading `credentials` through a memory secret source the test can rotate. */
  connector(env?: Record<string, string>, credentials?: OpttySecret): { connector: OpttyConnector; source: MemorySecretSource };
  /** A full refund of the Optty order `orderReference`, as the dispatcher would ask for it. */
  reversal(orderReference: string, overrides?: Partial<ReversalRequest>): ReversalRequest;
  /** How many times Optty paid each refund reference. */
  payouts(): Record<string, number>;
  tokensSince(start: number): number;
  /** Back to no faults, tokens accepted, refunds settled at once, reused references replayed, day-long tokens. */
  reset(): void;
  close(): Promise<void>;
}

export async function startOpttyClientWorld(): Promise<OpttyClientWorld> {
  const clock = { ms: Date.parse('2026-03-01T00:00:00.000Z') };
  const now = () => clock.ms;
  const optty = createOpttySimulators({
    ...SECRET,
    now,
    orders: Array.from({ length: 60 }, (_, i) => ({ reference: `OPT-${1000 + i}`, captured: { minor: 2498, currency: 'AUD' } })),
  });
  const host = await startSimulatorHost({ optty: optty.api, 'optty-auth': optty.auth }, { random: () => 0.25 });
  return {
    host,
    optty,
    secret: SECRET,
    timeoutMs: TIMEOUT_MS,
    clock,
    connector: (env = {}, credentials = SECRET) => {
      const { source, reader } = secretReader('optty', credentials, opttySecretSchema);
      const config = loadOpttyConfig({
        OPTTY_API_URL: host.baseUrl('optty'),
        OPTTY_AUTH_URL: host.baseUrl('optty-auth'),
        OPTTY_TIMEOUT_MS: String(TIMEOUT_MS),
        ...env,
      });
      return { connector: new OpttyConnector(reader, config, now), source };
    },
    reversal: (orderReference, overrides = {}) => ({
      refundId: `rf-${orderReference}`,
      orderId: `ap21-${orderReference}`,
      amount: { minor: 2498, currency: 'AUD' },
      payment: { provider: 'optty', reference: orderReference, capturedMinor: 2498, reservedMinor: 2498, refundedMinor: 0, availableMinor: 0 },
      description: 'Returned: belt',
      ...overrides,
    }),
    payouts: () => host.payouts().optty ?? {},
    tokensSince: (start) => optty.tokenRequests() - start,
    reset: () => {
      for (const prefix of ['optty', 'optty-auth']) host.setFaults(prefix, { failureRate: 0, resetRate: 0, timeoutRate: 0, hangMs: 0 });
      optty.setRejectAllTokens(false);
      optty.setPendingMode(false);
      optty.setDuplicateAnswer('replay');
      optty.setTokenTtl(86_400);
    },
    close: () => host.close(),
  };
}

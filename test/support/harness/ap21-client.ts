import { Ap21Client, type Ap21Credentials } from '../../../lambdas/providers/ap21/client';
import { loadAp21Config } from '../../../lambdas/providers/ap21/config';
import type { Ap21Secret } from '../../../lambdas/providers/ap21/schemas';
import { Ap21Simulator, type Ap21SimulatorOptions } from '../../../simulators/ap21/simulator';
import { startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';

export const BASIC = { username: 'refund-relay', password: 'correct-horse-battery-staple' };
export const ACCESS_TOKEN = 'ap21-token-3c1f0e6b9a';

export interface Ap21Harness {
  readonly sim: Ap21Simulator;
  readonly host: SimulatorHost;
  readonly baseUrl: string;
  client(env?: Record<string, string>, credentials?: Ap21Secret | Ap21Credentials): Ap21Client;
  close(): Promise<void>;
}

const fixed = (secret: Ap21Secret): Ap21Credentials => ({ get: async () => secret, refresh: async () => undefined });

/**
 * A simulator on a loopback port and clients pointed at it; calls are fast unless a test slows
 * them. `random` drives the host's fault dice (a constant below 0.5 puts every hang or reset
 * after the simulator acted).
 */
export async function startAp21(options: Partial<Ap21SimulatorOptions> = {}, random?: () => number): Promise<Ap21Harness> {
  const sim = new Ap21Simulator({ basic: BASIC, accessToken: ACCESS_TOKEN, timeZone: 'Australia/Melbourne', ...options });
  const host = await startSimulatorHost({ ap21: sim }, random ? { random } : {});
  const baseUrl = host.baseUrl('ap21');
  return {
    sim,
    host,
    baseUrl,
    client: (env = {}, credentials = BASIC) =>
      new Ap21Client(
        loadAp21Config({
          AP21_API_URL: baseUrl,
          AP21_COUNTRY_CODE: 'AU',
          AP21_TIME_ZONE: 'Australia/Melbourne',
          AP21_MAX_CALLS_PER_SECOND: '50',
          AP21_TIMEOUT_MS: '2000',
          ...env,
        }),
        'get' in credentials ? credentials : fixed(credentials),
      ),
    close: () => host.close(),
  };
}

export const LINEN_SHIRT = { skuId: '21503', quantity: 2, priceMinor: 5990, productName: 'LINEN SHIRT' };
export const BELT = { skuId: '880', quantity: 1, priceMinor: 4500, productName: 'BELT' };

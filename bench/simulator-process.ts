import { fork, type ChildProcess } from 'node:child_process';
import type { generateLocalSecrets } from '../local/secrets-file';
import { startProviderSimulators } from '../local/simulators';

/**
 * The provider simulators in a node process of their own, reached only over loopback HTTP: in
 * production the providers' work happens on their machines, so the bench keeps it off the event
 * loop and the core that run refund-relay's pipeline. Seeded and read through the simulator
 * host's own control routes (`POST /_sim/seed/<prefix>`, `GET /_sim/payouts`).
 */
export interface RemoteSimulators {
  /** The base URLs, as `startProviderSimulators` gives them. */
  readonly env: Readonly<Record<string, string>>;
  seed(prefix: 'addon-payments' | 'paypro' | 'optty', record: unknown): Promise<void>;
  /** Payouts per reference, summed over the paying simulators (Apace, EPG, PayPro, Optty). */
  payoutsByReference(): Promise<Map<string, number>>;
  /** One loopback round trip the simulators answer without work (a path they do not serve). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

type Secrets = ReturnType<typeof generateLocalSecrets>;
const PAYING = ['apace', 'addon-payments', 'paypro', 'optty'];
const START_TIMEOUT_MS = 30_000;

export async function startSimulatorProcess(secrets: Secrets): Promise<RemoteSimulators> {
  const child: ChildProcess = fork(__filename, ['--serve'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_SIMULATOR_SECRETS: JSON.stringify(secrets) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const env = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the simulator process did not start in time')), START_TIMEOUT_MS);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve((message as { env: Record<string, string> }).env);
    });
    child.once('exit', (code) => reject(new Error(`the simulator process exited with ${code}`)));
  });
  const control = new URL('/_sim/', env.ADDON_PAYMENTS_API_URL!.replace(/\/addon-payments$/, '/'));
  return {
    env,
    seed: async (prefix, record) => {
      const response = await fetch(new URL(`seed/${prefix}`, control), { method: 'POST', body: JSON.stringify(record) });
      if (!response.ok) throw new Error(`seeding ${prefix} failed: ${response.status} ${await response.text()}`);
    },
    payoutsByReference: async () => {
      const byPrefix = (await (await fetch(new URL('payouts', control))).json()) as Record<string, Record<string, number>>;
      const total = new Map<string, number>();
      for (const prefix of PAYING)
        for (const [reference, count] of Object.entries(byPrefix[prefix] ?? {})) total.set(reference, (total.get(reference) ?? 0) + count);
      return total;
    },
    ping: async () => {
      await (await fetch(new URL('ping', control))).arrayBuffer();
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    },
  };
}

if (require.main === module && process.argv.includes('--serve')) {
  void (async () => {
    const sims = await startProviderSimulators(JSON.parse(process.env.BENCH_SIMULATOR_SECRETS ?? '{}') as Secrets);
    process.send?.({ env: sims.env });
    process.once('SIGTERM', () => void sims.close().then(() => process.exit(0)));
    process.once('disconnect', () => void sims.close().then(() => process.exit(0)));
  })();
}

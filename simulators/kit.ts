import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Shared plumbing for the provider simulators (local runs and tests only; never bundled into a
 * Lambda). A simulator answers like the documented API; the host adds latency and faults and
 * counts payouts so tests can prove "paid exactly once".
 */
export interface SimRequest {
  readonly method: string;
  /** Path below the simulator's mount prefix, e.g. `/ext/refunds`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly sourceIp: string;
}

export interface SimResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Strings are sent as-is; anything else as JSON. */
  readonly body?: unknown;
}

export interface Simulator {
  readonly name: string;
  handle(request: SimRequest): Promise<SimResponse>;
  /** Money sent per merchant reference (our refund id). More than 1 anywhere is a double payout. */
  payouts(): ReadonlyMap<string, number>;
  /** Adds provider-side data (an original payment, an order) from a JSON record; throws if malformed. May say what it made. */
  seed?(record: unknown): unknown;
}

export interface FaultKnobs {
  /** Share of calls answered with a 5xx (before the simulator acts). */
  readonly failureRate: number;
  /** Share of calls whose connection is reset; half of them after the simulator acted. */
  readonly resetRate: number;
  /** Share of calls that hang for `hangMs`; half of them after the simulator acted. */
  readonly timeoutRate: number;
  readonly latencyMs: number;
  readonly hangMs: number;
}

export const NO_FAULTS: FaultKnobs = { failureRate: 0, resetRate: 0, timeoutRate: 0, latencyMs: 0, hangMs: 0 };

export interface SimulatorHost {
  readonly url: string;
  /** Base URL of one simulator, e.g. `${url}/optty`. */
  baseUrl(prefix: string): string;
  setFaults(prefix: string, knobs: Partial<FaultKnobs>): void;
  /** Payout counts per simulator and reference. */
  payouts(): Record<string, Record<string, number>>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Mounts simulators under prefixes on one loopback port. `GET /_sim/payouts` reports payouts,
 * `POST /_sim/faults/<prefix>` (JSON knobs) changes faults and `POST /_sim/seed/<prefix>` adds
 * provider-side data at run time, for the demo and tests in other processes.
 */
export async function startSimulatorHost(
  simulators: Readonly<Record<string, Simulator>>,
  options: { port?: number; random?: () => number } = {},
): Promise<SimulatorHost> {
  const random = options.random ?? Math.random;
  const faults = new Map<string, FaultKnobs>(Object.keys(simulators).map((prefix) => [prefix, NO_FAULTS]));
  const payouts = () => Object.fromEntries(Object.entries(simulators).map(([prefix, sim]) => [prefix, Object.fromEntries(sim.payouts())]));

  const server = createServer((req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"simulator failed"}');
      else res.destroy();
    });
  });
  async function serve(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://sim');
    const send = (response: SimResponse) => {
      const text = typeof response.body === 'string' ? response.body : response.body === undefined ? '' : JSON.stringify(response.body);
      const type = typeof response.body === 'string' ? 'text/plain' : 'application/json';
      res.writeHead(response.status, { 'content-type': type, ...response.headers });
      res.end(text);
    };
    if (url.pathname === '/_sim/payouts') return send({ status: 200, body: payouts() });
    const control = /^\/_sim\/faults\/([\w-]+)$/.exec(url.pathname);
    if (control && req.method === 'POST') {
      const prefix = control[1]!;
      if (!faults.has(prefix)) return send({ status: 404, body: { error: `no simulator ${prefix}` } });
      faults.set(prefix, { ...faults.get(prefix)!, ...(JSON.parse(Buffer.concat(chunks).toString() || '{}') as Partial<FaultKnobs>) });
      return send({ status: 200, body: faults.get(prefix) });
    }
    const seeding = /^\/_sim\/seed\/([\w-]+)$/.exec(url.pathname);
    if (seeding && req.method === 'POST') {
      const target = simulators[seeding[1]!];
      if (!target?.seed) return send({ status: 404, body: { error: `simulator ${seeding[1]} takes no seed data` } });
      let made: unknown;
      try {
        made = target.seed(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch (error) {
        return send({ status: 400, body: { error: (error as Error).message } });
      }
      return send(made === undefined ? { status: 204 } : { status: 200, body: made });
    }
    const prefix = url.pathname.split('/')[1] ?? '';
    const simulator = simulators[prefix];
    if (!simulator) return send({ status: 404, body: { error: `no simulator mounted at /${prefix}` } });
    const knobs = faults.get(prefix) ?? NO_FAULTS;
    if (knobs.latencyMs) await sleep(knobs.latencyMs * (0.5 + random()));
    const roll = random();
    const after = random() < 0.5;
    const reset = roll < knobs.resetRate;
    const hang = !reset && roll < knobs.resetRate + knobs.timeoutRate;
    const fail = !reset && !hang && roll < knobs.resetRate + knobs.timeoutRate + knobs.failureRate;
    if (fail) return send({ status: 503, body: { error: 'simulated outage' } });
    if ((reset || hang) && !after) {
      if (hang) await sleep(knobs.hangMs);
      res.destroy();
      return;
    }
    const response = await simulator.handle({
      method: req.method ?? 'GET',
      path: url.pathname.slice(prefix.length + 1) || '/',
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks),
      sourceIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    });
    // The provider acted, but its answer is lost: the case only idempotency references make safe.
    if (reset || hang) {
      if (hang) await sleep(knobs.hangMs);
      res.destroy();
      return;
    }
    send(response);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    baseUrl: (prefix) => `${url}/${prefix}`,
    setFaults: (prefix, knobs) => faults.set(prefix, { ...(faults.get(prefix) ?? NO_FAULTS), ...knobs }),
    payouts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

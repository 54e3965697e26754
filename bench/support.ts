import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Nearest-rank percentile of samples (milliseconds). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** dynalite on loopback, in memory, with every request it serves counted by operation (x-amz-target). */
export interface CountedDynalite {
  readonly endpoint: string;
  /** Requests per operation since the last reset. */
  readonly calls: Map<string, number>;
  total(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startCountedDynalite(): Promise<CountedDynalite> {
  // dynalite ships no types; this is the part of its API we use (as local/dynamodb.ts does).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dynalite = require('dynalite') as (options: { createTableMs: number; deleteTableMs: number; updateTableMs: number }) => Server;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const calls = new Map<string, number>();
  // Counted at the wire, in front of dynalite's own handler: what the SDK really sent.
  const [serve] = server.listeners('request') as ((...args: unknown[]) => void)[];
  server.removeAllListeners('request');
  server.on('request', (request: import('node:http').IncomingMessage, response: unknown) => {
    const operation = String(request.headers['x-amz-target'] ?? 'unknown')
      .split('.')
      .pop()!;
    calls.set(operation, (calls.get(operation) ?? 0) + 1);
    serve!(request, response);
  });
  const endpoint = await listen(server);
  return {
    endpoint,
    calls,
    total: () => [...calls.values()].reduce((sum, n) => sum + n, 0),
    reset: () => calls.clear(),
    close: () => close(server),
  };
}

/**
 * A Secrets Manager stand-in speaking its JSON protocol (GetSecretValue only), so the real SDK
 * client and our own secrets cache (commons/secrets.ts) run in front of it; every call is counted.
 */
export interface FakeSecretsManager {
  readonly url: string;
  calls(): number;
  close(): Promise<void>;
}

export async function startFakeSecretsManager(secrets: ReadonlyMap<string, unknown>): Promise<FakeSecretsManager> {
  let calls = 0;
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(body));
    };
    if (request.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue')
      return reply(400, { __type: 'InvalidRequestException', message: 'only GetSecretValue is served' });
    calls++;
    const { SecretId } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId: string };
    if (!secrets.has(SecretId))
      return reply(400, { __type: 'ResourceNotFoundException', message: `Secrets Manager can't find the specified secret: ${SecretId}` });
    reply(200, {
      ARN: `arn:aws:secretsmanager:ap-southeast-2:000000000000:secret:${SecretId}`,
      Name: SecretId,
      VersionId: 'v1',
      SecretString: JSON.stringify(secrets.get(SecretId)),
      CreatedDate: 1_767_225_600,
    });
  });
  const url = await listen(server);
  return { url, calls: () => calls, close: () => close(server) };
}

/**
 * Runs `work` with stdout writes discarded: the handlers log a line per request, as in Lambda, and
 * that formatting cost stays in the measurement while the report stays readable.
 */
export async function withStdoutDiscarded<T>(work: () => Promise<T>): Promise<T> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = () => true;
  try {
    return await work();
  } finally {
    process.stdout.write = write;
  }
}

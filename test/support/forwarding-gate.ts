import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Forwards each request byte for byte to `target`, or answers 503 when `refuse()` says so. */
export async function forwardingGate(target: string, refuse: () => boolean): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (refuse()) {
        response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"unavailable"}');
        return;
      }
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'x-request-signature-sha-256']) {
        const value = request.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      fetch(`${target}${request.url}`, { method: request.method ?? 'POST', headers, body: Buffer.concat(chunks) })
        .then(async (upstream) => response.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text()))
        .catch(() => response.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import type { HttpRequest } from '../../lambdas/commons/http';

/** An inbound request as the route handlers see it (commons/http.ts), for the providers' `inbound.ts` checks. */
export function inboundRequest(overrides: Partial<Omit<HttpRequest, 'body'>> & { body?: Buffer | string } = {}): HttpRequest {
  const { body = '', headers = {}, ...rest } = overrides;
  return {
    method: 'POST',
    path: '/',
    pathParameters: {},
    query: {},
    sourceIp: '127.0.0.1',
    correlationId: 'test',
    receivedAt: new Date().toISOString(),
    ...rest,
    headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])),
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  };
}

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { ROUTES, type RouteDefinition } from '../lambdas/routes';
import { bounded, MAX_NAME_CHARS } from '../lambdas/commons/bounded';

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

interface CompiledRoute extends RouteDefinition {
  readonly pattern: RegExp;
  readonly params: string[];
  readonly handler: Handler;
}

/** API Gateway's own limit on a request body. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

function compile(route: RouteDefinition, handler: Handler): CompiledRoute {
  const params: string[] = [];
  const source = route.path
    .split('/')
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      if (!param) return segment.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      params.push(param[1]!);
      return '([^/]+)';
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}$`), params, handler };
}

/**
 * Loads each route's handler module: the same `handler` export Lambda invokes. Loading is deferred
 * to here because modules read their environment when they load, as in a Lambda init phase.
 */
export function loadRoutes(): CompiledRoute[] {
  return ROUTES.map((route) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require(`../lambdas/functions/${route.fn}`) as { handler: Handler };
    return compile(route, module.handler);
  });
}

function lambdaContext(fn: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${fn}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** A path segment that is not valid percent-encoding: refused (400) before any handler runs. */
class UndecodablePathError extends Error {
  override readonly name = 'UndecodablePathError';
}

function decodePathValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new UndecodablePathError(`path segment is not valid percent-encoding`);
  }
}

/** The REST proxy event API Gateway would send, with the body base64-encoded (binary media type *\/*). */
export function toProxyEvent(route: CompiledRoute, request: IncomingMessage, url: URL, pathValues: string[], body: Buffer): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i]!;
    const value = request.rawHeaders[i + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    query[name] = value;
    (multiQuery[name] ??= []).push(value);
  }
  const pathParameters = Object.fromEntries(route.params.map((name, i) => [name, decodePathValue(pathValues[i] ?? '')]));
  const sourceIp = (request.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  return {
    resource: route.path,
    path: url.pathname,
    httpMethod: request.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: url.searchParams.size ? query : null,
    multiValueQueryStringParameters: url.searchParams.size ? multiQuery : null,
    pathParameters: route.params.length ? pathParameters : null,
    stageVariables: null,
    body: body.length ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      httpMethod: request.method ?? 'GET',
      path: url.pathname,
      protocol: 'HTTP/1.1',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: route.fn,
      resourcePath: route.path,
      stage: 'local',
      identity: { sourceIp, userAgent: request.headers['user-agent'] ?? null } as APIGatewayProxyEvent['requestContext']['identity'],
    },
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface LocalServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the routes of docs/design.md §3 on loopback, as API Gateway would in front of the Lambdas. */
export async function startServer(routes: CompiledRoute[], options: { port?: number; host?: string } = {}): Promise<LocalServer> {
  const server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? '/', 'http://local');
      const onPath = routes.map((route) => ({ route, match: route.pattern.exec(url.pathname) })).filter((r) => r.match);
      const hit = onPath.find(({ route }) => route.method === request.method);
      if (!hit) {
        request.resume();
        if (onPath.length)
          return sendJson(response, 405, { error: { code: 'method_not_allowed', message: `use ${onPath.map((r) => r.route.method).join(' or ')}` } });
        return sendJson(response, 404, {
          error: { code: 'route_not_found', message: `no route for ${request.method} ${bounded(url.pathname, MAX_NAME_CHARS)}` },
        });
      }
      const body = await readBody(request);
      if (!body) return sendJson(response, 413, { error: { code: 'payload_too_large', message: 'request body exceeds 10 MB' } });
      const event = toProxyEvent(hit.route, request, url, hit.match!.slice(1), body);
      const result = await hit.route.handler(event, lambdaContext(hit.route.fn));
      response.writeHead(result.statusCode, result.headers as Record<string, string>);
      response.end(result.body);
    } catch (error) {
      if (error instanceof UndecodablePathError && !response.headersSent)
        return sendJson(response, 400, { error: { code: 'invalid_path', message: error.message } });
      // API Gateway answers 502 when the integration itself fails; the handler logged the cause.
      if (!response.headersSent) sendJson(response, 502, { error: { code: 'bad_gateway', message: 'handler failed' } });
      else response.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

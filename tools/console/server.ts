import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { z } from 'zod';
import { describeError } from '../../lambdas/commons/redact';
import { endRefundCommand, redrive } from '../ops/commands';
import { OpsError, type OpsTarget } from '../ops/target';
import { find, forBrowser, notFound, orderView, rawMessage, reviewView, statsView } from './views';

/**
 * The refund console's HTTP side (README "Refund console"): loopback only, a random session token
 * on every request (as a cookie once the printed URL was opened), a CSRF token on every action, and
 * the actions are the operator CLI's own commands (tools/ops/commands.ts).
 */
export interface ConsoleOptions {
  readonly target: OpsTarget;
  /** Who acts, for the timeline (the CLI uses the login name too). */
  readonly operator: string;
  readonly readOnly?: boolean;
  /** 0: any free port. */
  readonly port?: number;
  readonly now?: () => Date;
}

export interface RunningConsole {
  readonly url: string;
  /** The printed URL: opening it once starts the browser's session. */
  readonly loginUrl: string;
  readonly sessionToken: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;
const STATIC_DIR = join(__dirname, 'static');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const ActionBody = z.strictObject({
  refundId: z.string().min(1).max(256),
  orderId: z.string().min(1).max(256),
  reason: z.string().trim().min(1, 'a reason is required').max(1000),
  providerChecked: z.boolean().optional(),
});
const ACTIONS = ['redrive', 'reroute', 'release'] as const;
type Action = (typeof ACTIONS)[number];

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const sameSecret = (given: string | undefined, secret: string) =>
  given !== undefined && given.length === secret.length && timingSafeEqual(Buffer.from(given), Buffer.from(secret));

function cookieOf(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

async function bodyOf(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `a request body is at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'the body must be JSON');
  }
}

export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const sessionToken = randomBytes(24).toString('base64url');
  const csrfToken = randomBytes(24).toString('base64url');
  const now = options.now ?? (() => new Date());
  const page = readFileSync(join(STATIC_DIR, 'index.html'), 'utf8');
  const assets = Object.fromEntries(Object.entries(ASSETS).map(([path, asset]) => [path, { ...asset, body: readFileSync(join(STATIC_DIR, asset.file)) }]));
  let origin = '';
  // Cookies do not tell ports apart: each console (one per stage, say) keeps its own.
  let cookieName = '';

  const send = (response: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}) => {
    response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...headers });
    response.end(body);
  };
  const json = (response: ServerResponse, status: number, value: unknown) =>
    send(response, status, 'application/json; charset=utf-8', JSON.stringify(value, forBrowser));

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin);
    // Only this console's own name: a page elsewhere cannot reach it through a rebound DNS name.
    if (request.headers.host !== url.host && request.headers.host !== `localhost:${url.port}`) throw new HttpError(421, 'wrong host');
    const viaQuery = url.searchParams.get('token') ?? undefined;
    if (request.method === 'GET' && url.pathname === '/' && sameSecret(viaQuery, sessionToken)) {
      // The printed URL: the token moves into an HttpOnly cookie and leaves the address bar.
      send(response, 303, 'text/plain; charset=utf-8', 'signed in', {
        location: '/',
        'set-cookie': `${cookieName}=${sessionToken}; HttpOnly; SameSite=Strict; Path=/`,
      });
      return;
    }
    const bearer = request.headers.authorization?.replace(/^Bearer /, '');
    if (!sameSecret(cookieOf(request, cookieName), sessionToken) && !sameSecret(bearer, sessionToken))
      throw new HttpError(401, 'open the console with the URL it printed at start (the session token is required on every request)');

    if (request.method === 'POST') {
      const action = /^\/api\/actions\/(\w+)$/.exec(url.pathname)?.[1];
      if (!action || !(ACTIONS as readonly string[]).includes(action)) throw new HttpError(404, 'no such action');
      if (request.headers.origin !== undefined && request.headers.origin !== origin) throw new HttpError(403, 'cross-origin request refused');
      if (!sameSecret(request.headers['x-csrf-token'] as string | undefined, csrfToken)) throw new HttpError(403, 'the CSRF token is missing or wrong');
      if (options.readOnly) throw new HttpError(403, 'the console runs with --read-only: no actions');
      const parsed = ActionBody.safeParse(await bodyOf(request));
      if (!parsed.success) throw new HttpError(400, parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '));
      json(response, 200, await act(action as Action, parsed.data));
      return;
    }
    if (request.method !== 'GET') throw new HttpError(405, 'GET or POST only');
    if (url.pathname === '/favicon.ico') return send(response, 204, 'image/x-icon', '');
    const asset = assets[url.pathname];
    if (asset) return send(response, 200, asset.type, asset.body);
    const param = (name: string) => {
      const value = url.searchParams.get(name);
      if (!value || value.length > 1000) throw new HttpError(400, `the ${name} parameter is required`);
      return value;
    };
    switch (url.pathname) {
      case '/':
        return send(
          response,
          200,
          'text/html; charset=utf-8',
          page
            .replace('{{CSRF}}', csrfToken)
            .replace('{{READ_ONLY}}', options.readOnly ? 'true' : 'false')
            .replace(/\{\{TARGET\}\}/g, escapeHtml(`${options.target.name} (table ${options.target.tableName})`)),
        );
      case '/api/find':
        return json(response, 200, await find(options.target, param('q')));
      case '/api/order':
        return json(response, 200, await orderView(options.target, param('id')));
      case '/api/raw':
        return json(response, 200, await rawMessage(options.target, param('order'), param('inbox')));
      case '/api/review':
        return json(response, 200, await reviewView(options.target, now()));
      case '/api/stats':
        return json(response, 200, await statsView(options.target, now()));
      default:
        throw new HttpError(404, 'not found');
    }
  }

  /** The CLI's commands, with the operator's reason. */
  async function act(action: Action, body: z.infer<typeof ActionBody>) {
    const common = { orderId: body.orderId, operator: options.operator, reason: body.reason, now: now() };
    const result =
      action === 'redrive'
        ? await redrive(options.target, body.refundId, common)
        : await endRefundCommand(options.target, action, body.refundId, { ...common, providerChecked: body.providerChecked === true });
    return { message: result.text, result: result.json };
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const status =
        error instanceof HttpError
          ? error.status
          : notFound(error)
            ? 404
            : error instanceof OpsError
              ? 409
              : /AccessDenied|UnauthorizedOperation|not authorized/i.test(`${(error as Error).name} ${(error as Error).message}`)
                ? 403
                : 500;
      const message = status === 500 ? `${describeError(error).name}: ${describeError(error).message}` : (error as Error).message;
      if (!response.headersSent) json(response, status, { error: message });
      else response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  origin = `http://127.0.0.1:${port}`;
  cookieName = `refund_console_${port}`;
  return {
    url: origin,
    loginUrl: `${origin}/?token=${sessionToken}`,
    sessionToken,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

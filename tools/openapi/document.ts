import * as z from 'zod/mini';
import { CORRELATION_ID } from '../../lambdas/commons/http';
import { ROUTE_DOCS, errorBodySchema, type BodyContent, type RouteDoc } from './route-docs';
import { ROUTES, type RouteDefinition } from '../../lambdas/routes';
import { STAGE_NAMES, STAGES } from '../../lib/stage-config';
import { version } from '../../package.json';

export class RouteDocumentationError extends Error {
  override readonly name = 'RouteDocumentationError';
}

type JsonObject = Record<string, unknown>;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Malformed request',
  401: 'Not authenticated',
  403: 'Not allowed from this source',
  404: 'Unknown order or refund',
  409: 'Conflicts with the current state',
  413: 'Body too large',
  415: 'Wrong content type',
  422: 'Well-formed but invalid',
  429: 'Too many requests',
  500: 'Unexpected failure (logged)',
  503: 'Busy; retry shortly',
};

/**
 * What API Gateway answers itself, before any handler runs, in the handlers' error shape
 * (lib/inbound-api.ts gateway responses): the stage's throttle on every route, and the resource
 * policy on a path with a source allowlist.
 */
const THROTTLED = 'throttled';
const FORBIDDEN_SOURCE = 'forbidden_source';
const GATEWAY_NOTE = `\`${THROTTLED}\` (429) and, on allowlisted paths, \`${FORBIDDEN_SOURCE}\` (403) come from API Gateway itself, which echoes \`x-correlation-id\` only when the caller sent one.`;

const CORRELATION_HEADER = { 'x-correlation-id': { $ref: '#/components/headers/CorrelationId' } };

export const routeKey = (route: Pick<RouteDefinition, 'method' | 'path'>): string => `${route.method} ${route.path}`;

/** JSON Schema 2020-12 (OpenAPI 3.1's dialect) of a zod schema, as a request (input) or response (output). */
function jsonSchema(schema: z.ZodMiniType, io: 'input' | 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'throw' }) as JsonObject;
  return rest;
}

function parameters(place: 'path' | 'query' | 'header', schema: z.ZodMiniObject | undefined): JsonObject[] {
  if (!schema) return [];
  const { properties = {}, required = [] } = jsonSchema(schema, 'input') as { properties?: Record<string, JsonObject>; required?: string[] };
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: place,
    required: place === 'path' || required.includes(name),
    schema: property,
  }));
}

function bodySchema(content: BodyContent): JsonObject {
  return 'zod' in content.schema ? jsonSchema(content.schema.zod, 'input') : { ...content.schema.jsonSchema };
}

/** The handler's error statuses and codes, plus API Gateway's own answers on this path. */
function errorCodes(doc: RouteDoc, allowlisted: boolean): Record<string, readonly string[]> {
  const codes: Record<string, string[]> = Object.fromEntries(Object.entries(doc.errors).map(([status, list]) => [status, [...list]]));
  const add = (status: number, code: string) => {
    const list = (codes[status] ??= []);
    if (!list.includes(code)) list.push(code);
  };
  add(429, THROTTLED);
  if (allowlisted) add(403, FORBIDDEN_SOURCE);
  return codes;
}

function operationId(route: RouteDefinition): string {
  return route.fn.replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** The allowlist each stage's API enforces on this path (lib/stage-config.ts), when it has one. */
function ipAllowlist(path: string): Record<string, readonly string[]> | undefined {
  const byStage = Object.fromEntries(STAGE_NAMES.flatMap((stage) => (STAGES[stage].ipAllowlists[path] ? [[stage, STAGES[stage].ipAllowlists[path]]] : [])));
  return Object.keys(byStage).length ? byStage : undefined;
}

function operation(route: RouteDefinition, doc: RouteDoc, schemes: Map<string, JsonObject>): JsonObject {
  for (const { name, definition } of doc.security) {
    const known = schemes.get(name);
    if (known && JSON.stringify(known) !== JSON.stringify(definition)) throw new RouteDocumentationError(`security scheme ${name} is defined two ways`);
    schemes.set(name, definition);
  }
  const pathParams = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
  const declared = parameters('path', doc.path).map((parameter) => parameter.name);
  if (JSON.stringify([...pathParams].sort()) !== JSON.stringify([...declared].sort())) {
    throw new RouteDocumentationError(
      `${routeKey(route)}: path parameters ${pathParams.join(', ') || '(none)'} but documented ${declared.join(', ') || '(none)'}`,
    );
  }
  const allowlist = ipAllowlist(route.path);
  const errorResponses = Object.fromEntries(
    Object.entries(errorCodes(doc, allowlist !== undefined)).map(([status, codes]) => [
      status,
      {
        description: `${STATUS_TEXT[Number(status)] ?? 'Error'}: ${codes.join(', ')}`,
        headers: CORRELATION_HEADER,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    ]),
  );
  return {
    operationId: operationId(route),
    summary: doc.summary,
    description: allowlist ? `${doc.description}\n\nOnly the source addresses in \`x-ip-allowlist\` (per stage) may call it.` : doc.description,
    tags: [route.caller],
    parameters: [
      ...parameters('path', doc.path),
      ...parameters('query', doc.query),
      ...parameters('header', doc.headers),
      { $ref: '#/components/parameters/CorrelationId' },
    ],
    ...(doc.body && {
      requestBody: {
        required: true,
        description: `At most ${doc.body.maxBytes} bytes.`,
        content: Object.fromEntries(
          Object.entries(doc.body.content).map(([mediaType, content]) => [mediaType, { schema: bodySchema(content), examples: content.examples }]),
        ),
      },
    }),
    responses: {
      [doc.success.status]: {
        description: doc.success.description,
        headers: CORRELATION_HEADER,
        content: { 'application/json': { schema: jsonSchema(doc.success.schema, 'output') } },
      },
      ...errorResponses,
    },
    security: doc.security.length ? [Object.fromEntries(doc.security.map((scheme) => [scheme.name, []]))] : [],
    ...(allowlist && { 'x-ip-allowlist': allowlist }),
  };
}

/** The OpenAPI 3.1 document of every inbound route; throws when a route is undocumented or a doc has no route. */
export function openApiDocument(routes: readonly RouteDefinition[] = ROUTES, docs: Readonly<Record<string, RouteDoc>> = ROUTE_DOCS): JsonObject {
  const keys = new Set(routes.map(routeKey));
  const undocumented = [...keys].filter((key) => !docs[key]);
  const orphaned = Object.keys(docs).filter((key) => !keys.has(key));
  if (undocumented.length || orphaned.length) {
    throw new RouteDocumentationError(
      [
        ...(undocumented.length ? [`routes without an entry in tools/openapi/route-docs.ts: ${undocumented.join('; ')}`] : []),
        ...(orphaned.length ? [`entries in tools/openapi/route-docs.ts for no route: ${orphaned.join('; ')}`] : []),
      ].join('\n'),
    );
  }
  const schemes = new Map<string, JsonObject>();
  const paths: Record<string, JsonObject> = {};
  for (const route of routes) {
    paths[route.path] = { ...paths[route.path], [route.method.toLowerCase()]: operation(route, docs[routeKey(route)]!, schemes) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'refund-relay inbound API',
      version,
      description:
        'What Apace, Refundid, Ap21-side integrations and the payment providers call (docs/design.md §3). Generated by `npm run openapi` from ' +
        'lambdas/routes.ts and the zod schemas the handlers validate with (tools/openapi/route-docs.ts); a test fails when this file is stale. ' +
        'Every error is answered as `{"error": {"code", "message"}}`; every answer from a handler carries `x-correlation-id` (sent or generated). ' +
        GATEWAY_NOTE,
    },
    servers: [
      { url: 'https://{host}', description: "A stage's API (stack output PublicBaseUrl)", variables: { host: { default: 'refunds.example.com' } } },
      { url: 'http://127.0.0.1:3000', description: 'The local runtime (npm start)' },
    ],
    paths,
    components: {
      schemas: { Error: jsonSchema(errorBodySchema, 'output') },
      parameters: {
        CorrelationId: {
          name: 'x-correlation-id',
          in: 'header',
          required: false,
          description: 'Ties the request to our logs. Kept when it matches the pattern, otherwise replaced by the request id; echoed in the answer.',
          schema: { type: 'string', pattern: CORRELATION_ID.source },
        },
      },
      headers: {
        CorrelationId: {
          description: "The request's correlation id: the caller's own when it sent a valid one, else API Gateway's request id.",
          schema: { type: 'string', pattern: CORRELATION_ID.source },
        },
      },
      securitySchemes: Object.fromEntries([...schemes].sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

/** The document as committed: two-space JSON with a final newline. */
export function renderOpenApi(document: JsonObject = openApiDocument()): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

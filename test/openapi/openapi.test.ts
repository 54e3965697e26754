import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from '@readme/openapi-parser';
import * as z from 'zod/mini';
import { MEDIA_TYPES } from '../../lambdas/commons/media-types';
import { parseStatusNotification } from '../../lambdas/providers/addon-payments/schemas';
import { parsePayProIpn } from '../../lambdas/providers/paypro/ipn';
import { ROUTE_DOCS, type RouteDoc } from '../../tools/openapi/route-docs';
import { ROUTES, type RouteDefinition } from '../../lambdas/routes';
import { parseAp21Push } from '../../lambdas/services/ap21-push';
import { STAGE_NAMES, STAGES } from '../../lib/stage-config';
import { RouteDocumentationError, openApiDocument, renderOpenApi, routeKey } from '../../tools/openapi/document';
import { startTestStack, type TestStack } from '../support/stack';

type Response = { description: string; headers?: Record<string, unknown>; content: Record<string, { schema: unknown }> };
type Operation = {
  parameters: ({ name: string; in: string } | { $ref: string })[];
  requestBody?: { content: Record<string, { schema: unknown; examples: Record<string, { value: unknown }> }> };
  responses: Record<string, Response>;
  security: Record<string, unknown[]>[];
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
};

const document = openApiDocument() as unknown as Document;
const operationOf = (route: Pick<RouteDefinition, 'method' | 'path'>) => document.paths[route.path]![route.method.toLowerCase()]!;
const bodyRoutes = ROUTES.filter((route) => ROUTE_DOCS[routeKey(route)]!.body);

describe('docs/openapi.json', () => {
  it('is exactly what npm run openapi generates from the routes and their zod schemas (regenerate it when this fails)', () => {
    const committed = readFileSync(join(__dirname, '..', '..', 'docs', 'openapi.json'), 'utf8');
    expect(committed).toBe(renderOpenApi());
  });

  it('is a valid OpenAPI 3.1 document, by an OpenAPI validator (its JSON schema and its rules), without warnings', async () => {
    const result = await validate(structuredClone(document) as unknown as Parameters<typeof validate>[0]);
    expect(result).toMatchObject({ valid: true, warnings: [] });
    expect(document.openapi).toBe('3.1.0');
  });

  it('CONTROL: the validator refuses a document with a path parameter no operation declares', async () => {
    const broken = structuredClone(document);
    broken.paths['/refunds/{refundId}'] = { get: { parameters: [], responses: { 200: { description: 'x', content: {} } }, security: [] } };
    const result = await validate(broken as unknown as Parameters<typeof validate>[0]);
    expect(result.valid).toBe(false);
  });

  it('documents every route in ROUTES, once', () => {
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map(routeKey).sort());
  });

  it('declares every path parameter, names only defined security schemes, and answers errors with the Error schema', () => {
    for (const route of ROUTES) {
      const operation = operationOf(route);
      const inPath = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      const declared = operation.parameters.flatMap((parameter) => ('in' in parameter && parameter.in === 'path' ? [parameter.name] : []));
      expect(declared.sort()).toEqual(inPath.sort());
      for (const requirement of operation.security)
        for (const name of Object.keys(requirement)) expect(document.components.securitySchemes).toHaveProperty(name);
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400) expect(response.content['application/json']!.schema).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
  });

  it('takes x-correlation-id on every route and answers it on every response', () => {
    for (const route of ROUTES) {
      const operation = operationOf(route);
      expect(operation.parameters).toContainEqual({ $ref: '#/components/parameters/CorrelationId' });
      for (const response of Object.values(operation.responses))
        expect(response.headers).toEqual({ 'x-correlation-id': { $ref: '#/components/headers/CorrelationId' } });
    }
  });

  it("lists API Gateway's own answers: 429 when throttled on every route, 403 on every path with a source allowlist", () => {
    const allowlisted = new Set(STAGE_NAMES.flatMap((stage) => Object.keys(STAGES[stage].ipAllowlists)));
    for (const route of ROUTES) {
      const { responses } = operationOf(route);
      expect(responses['429']?.description).toBe('Too many requests: throttled');
      expect([route.path, responses['403']?.description.includes('forbidden_source') ?? false]).toEqual([route.path, allowlisted.has(route.path)]);
    }
  });

  it('carries the request body schema the handler validates with', () => {
    const notification = operationOf({ method: 'POST', path: '/apace/orders/{orderId}/refunds/{refundId}/notification' });
    const doc = ROUTE_DOCS['POST /apace/orders/{orderId}/refunds/{refundId}/notification']!;
    const content = doc.body!.content['application/json']!;
    if (!('zod' in content.schema)) throw new Error('the Apace notification is documented from its zod schema');
    const { $schema: _, ...expected } = z.toJSONSchema(content.schema.zod, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
    expect(notification.requestBody!.content['application/json']!.schema).toEqual(expected);
    expect(notification.requestBody!.content['application/json']!.schema).toMatchObject({ required: ['refund_id', 'order_id', 'refund_success'] });
  });

  it('refuses a route without documentation, documentation without a route, and mismatched path parameters', () => {
    const extra: RouteDefinition = { method: 'POST', path: '/refunds/undocumented', fn: 'health', caller: 'nobody' };
    expect(() => openApiDocument([...ROUTES, extra])).toThrow(
      new RouteDocumentationError('routes without an entry in tools/openapi/route-docs.ts: POST /refunds/undocumented'),
    );
    expect(() => openApiDocument(ROUTES.slice(1))).toThrow(/entries in tools\/openapi\/route-docs.ts for no route: GET \/apace/);
    const health = ROUTE_DOCS['GET /health']!;
    const withParam: RouteDefinition = { method: 'GET', path: '/health/{probe}', fn: 'health', caller: 'anyone' };
    expect(() => openApiDocument([withParam], { 'GET /health/{probe}': health })).toThrow('path parameters probe but documented (none)');
  });
});

/** Each route's request body as its handler reads it: the same parser, so an example that does not parse fails here. */
const READERS: Readonly<Record<string, (example: unknown, doc: RouteDoc, mediaType: string) => unknown>> = {
  'POST /ap21/returns': (example) => parseAp21Push(example as string),
  'POST /providers/addon-payments/status': (example, _doc, mediaType) =>
    parseStatusNotification(mediaType === 'application/json' ? JSON.stringify(example) : (example as string)),
  'POST /providers/paypro/ipn': (example) => parsePayProIpn(example as string),
};
const readWithZod = (example: unknown, doc: RouteDoc, mediaType: string) => {
  const { schema } = doc.body!.content[mediaType]!;
  if (!('zod' in schema)) throw new Error(`no reader for a ${mediaType} body without a zod schema`);
  return z.parse(schema.zod, example);
};

describe('request bodies in docs/openapi.json', () => {
  it('are declared in exactly the media types each handler accepts: XML as text/xml and application/xml only where it takes XML', () => {
    const declared = Object.fromEntries(bodyRoutes.map((route) => [routeKey(route), Object.keys(operationOf(route).requestBody!.content).sort()]));
    expect(declared).toEqual({
      'POST /apace/orders/{orderId}/refunds/{refundId}/notification': [...MEDIA_TYPES.json],
      'POST /refundid/refund': [...MEDIA_TYPES.json],
      'POST /providers/paypro/ipn': [...MEDIA_TYPES.form],
      'POST /providers/optty/notifications': [...MEDIA_TYPES.json],
      'POST /providers/addon-payments/status': ['application/json', 'application/xml', 'text/xml'],
      'POST /ap21/returns': ['application/xml', 'text/xml'],
    });
  });

  it('each show at least one example per media type, and every example is read by the handler’s own parser', () => {
    for (const route of bodyRoutes) {
      const key = routeKey(route);
      const doc = ROUTE_DOCS[key]!;
      for (const [mediaType, content] of Object.entries(operationOf(route).requestBody!.content)) {
        const examples = Object.entries(content.examples);
        expect([key, mediaType, examples.length > 0]).toEqual([key, mediaType, true]);
        for (const [, example] of examples) expect(() => (READERS[key] ?? readWithZod)(example.value, doc, mediaType)).not.toThrow();
      }
    }
  });

  it('describe XML with element names: <ReturnOrder> and its <OrderDetail> lines', () => {
    const schema = operationOf({ method: 'POST', path: '/ap21/returns' }).requestBody!.content['text/xml']!.schema as {
      xml: { name: string };
      properties: { OrderDetails: { xml: { wrapped: boolean }; items: { xml: { name: string } } } };
    };
    expect(schema.xml.name).toBe('ReturnOrder');
    expect(schema.properties.OrderDetails).toMatchObject({ xml: { wrapped: true }, items: { xml: { name: 'OrderDetail' } } });
  });
});

describe('the media types the documentation declares, against the running handler', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(() => stack.close());
  const post = (contentType: string, body: string) =>
    fetch(`${stack.url}/providers/addon-payments/status`, { method: 'POST', headers: { 'content-type': contentType }, body });

  it('takes the EPG status notification in each declared type, and refuses another with 415', async () => {
    const { content } = operationOf({ method: 'POST', path: '/providers/addon-payments/status' }).requestBody!;
    for (const [mediaType, { examples }] of Object.entries(content)) {
      const value = Object.values(examples)[0]!.value;
      const response = await post(mediaType, typeof value === 'string' ? value : JSON.stringify(value));
      expect([mediaType, response.status]).toEqual([mediaType, 200]);
    }
    const refused = await post('text/plain', String(Object.values(content['text/xml']!.examples)[0]!.value));
    expect(refused.status).toBe(415);
    expect(await refused.json()).toMatchObject({ error: { code: 'unsupported_media_type' } });
  });
});

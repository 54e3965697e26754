import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { ROUTE_DOCS } from '../../lambdas/route-docs';
import { ROUTES, type RouteDefinition } from '../../lambdas/routes';
import { RouteDocumentationError, openApiDocument, renderOpenApi, routeKey } from '../../tools/openapi/document';

type Operation = {
  parameters: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content: Record<string, { schema: unknown }> }>;
  security: Record<string, unknown[]>[];
};
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
};

const document = openApiDocument() as unknown as Document;

describe('docs/openapi.json', () => {
  it('is exactly what npm run openapi generates from the routes and their zod schemas (regenerate it when this fails)', () => {
    const committed = readFileSync(join(__dirname, '..', '..', 'docs', 'openapi.json'), 'utf8');
    expect(committed).toBe(renderOpenApi());
  });

  it('documents every route in ROUTES, once, as OpenAPI 3.1', () => {
    expect(document.openapi).toBe('3.1.0');
    const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map(routeKey).sort());
  });

  it('declares every path parameter, names only defined security schemes, and answers errors with the Error schema', () => {
    for (const route of ROUTES) {
      const operation = document.paths[route.path]![route.method.toLowerCase()]!;
      const inPath = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      expect(
        operation.parameters
          .filter((parameter) => parameter.in === 'path')
          .map((parameter) => parameter.name)
          .sort(),
      ).toEqual(inPath.sort());
      for (const requirement of operation.security)
        for (const name of Object.keys(requirement)) expect(document.components.securitySchemes).toHaveProperty(name);
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400) expect(response.content['application/json']!.schema).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
  });

  it('carries the request body schema the handler validates with', () => {
    const notification = document.paths['/apace/orders/{orderId}/refunds/{refundId}/notification']!.post!;
    const doc = ROUTE_DOCS['POST /apace/orders/{orderId}/refunds/{refundId}/notification']!;
    const { $schema: _, ...expected } = z.toJSONSchema(doc.body!.schema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
    expect(notification.requestBody!.content['application/json']!.schema).toEqual(expected);
    expect(notification.requestBody!.content['application/json']!.schema).toMatchObject({ required: ['refund_id', 'order_id', 'refund_success'] });
  });

  it('refuses a route without documentation, documentation without a route, and mismatched path parameters', () => {
    const extra: RouteDefinition = { method: 'POST', path: '/refunds/undocumented', fn: 'health', caller: 'nobody' };
    expect(() => openApiDocument([...ROUTES, extra])).toThrow(
      new RouteDocumentationError('routes without an entry in lambdas/route-docs.ts: POST /refunds/undocumented'),
    );
    expect(() => openApiDocument(ROUTES.slice(1))).toThrow(/entries in lambdas\/route-docs.ts for no route: GET \/apace/);
    const health = ROUTE_DOCS['GET /health']!;
    const withParam: RouteDefinition = { method: 'GET', path: '/health/{probe}', fn: 'health', caller: 'anyone' };
    expect(() => openApiDocument([withParam], { 'GET /health/{probe}': health })).toThrow('path parameters probe but documented (none)');
  });
});

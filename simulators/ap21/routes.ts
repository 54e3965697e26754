import { parseXml, XmlError } from '../../lambdas/commons/xml';
import { InvalidMoneyError } from '../../lambdas/domain/errors';
import { AP21_ERROR_CODES } from '../../lambdas/providers/ap21/statuses';
import type { SimRequest, SimResponse } from '../kit';
import { orderDocument, personDocument, returnDocument, withAttributes, type DocumentContext } from './documents';
import { changedOrders } from './feed';
import { readReturnCandidate, type ReturnCandidate } from './return-rules';
import { ap21Error, failureResponse, header, NO_DATA, param, XML_HEADERS } from './wire';
import type { SimOrder } from './model';
import type { Ap21World } from './world';

export type Ap21Endpoint =
  | 'GET /Orders'
  | 'GET /Persons/{pid}'
  | 'GET /Persons/{pid}/Orders/{oid}'
  | 'GET /OrderNumbers/{n}'
  | 'GET /Persons/{pid}/Orders/{oid}/Returns'
  | 'GET /Persons/{pid}/Orders/{oid}/Returns/{rid}'
  | 'POST /Persons/{pid}/Orders/{oid}/Returns'
  | 'DELETE /Returns/{rid}';

/** What a route handler is given: the request, its path ids and the negotiated document context. */
export interface RouteCall {
  readonly request: SimRequest;
  readonly ids: readonly string[];
  readonly context: DocumentContext;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly pattern: RegExp;
  readonly endpoint: Ap21Endpoint;
  readonly serve: (world: Ap21World, call: RouteCall) => SimResponse;
}

const RETURNS_REFUSED = 'Returns are only allowed on a Despatch from Warehouse order';

/** The order named by a path's person and order ids, or undefined (Ap21 answers 5008). */
function pathOrder(world: Ap21World, ids: readonly string[]): SimOrder | undefined {
  const [personId = '', orderId = ''] = ids;
  return world.orderOf(personId, orderId);
}

function getPerson(world: Ap21World, { ids, context }: RouteCall): SimResponse {
  const person = world.person(ids[0] ?? '');
  if (!person) return failureResponse(NO_DATA);
  return { status: 200, headers: XML_HEADERS, body: personDocument(person, context) };
}

function getOrder(world: Ap21World, { ids, context }: RouteCall): SimResponse {
  const order = pathOrder(world, ids);
  if (!order) return failureResponse(NO_DATA);
  return { status: 200, headers: XML_HEADERS, body: orderDocument(order, 1, world.person(order.personId), context) };
}

/** `GET /OrderNumbers/{n}`: the same `<Order>` as the single-order GET, found by its web order number (guide p.140). */
function getOrderByNumber(world: Ap21World, { ids, context }: RouteCall): SimResponse {
  let wanted: string;
  try {
    wanted = decodeURIComponent(ids[0] ?? '');
  } catch {
    return failureResponse(NO_DATA);
  }
  const order = world.orderNumbered(wanted);
  if (!order) return failureResponse(NO_DATA);
  return { status: 200, headers: XML_HEADERS, body: orderDocument(order, 1, world.person(order.personId), context) };
}

function listReturns(world: Ap21World, { ids, context }: RouteCall): SimResponse {
  const order = pathOrder(world, ids);
  if (!order) return failureResponse(NO_DATA);
  const refused = world.returnsRefusal(order.orderId);
  if (refused) return failureResponse(refused, RETURNS_REFUSED);
  const returns = world.returnsOf(order.orderId);
  if (returns.length === 0) return failureResponse(NO_DATA);
  return {
    status: 200,
    headers: XML_HEADERS,
    body: withAttributes('ReturnOrders', { TotalRows: returns.length }, returns.map((ret) => returnDocument(ret, context)).join('')),
  };
}

function getReturn(world: Ap21World, { ids, context }: RouteCall): SimResponse {
  const order = pathOrder(world, ids);
  const found = world.returnById(ids[2] ?? '');
  if (!order || !found || found.orderId !== order.orderId) return failureResponse(NO_DATA);
  const refused = world.returnsRefusal(order.orderId);
  if (refused) return failureResponse(refused, RETURNS_REFUSED);
  return { status: 200, headers: XML_HEADERS, body: returnDocument(found, context) };
}

/** `DELETE /Returns/{rid}?CountryCode=`: reverses an exchange (guide: only a Return Merged return against an original in Exchange). */
function deleteReturn(world: Ap21World, { ids }: RouteCall): SimResponse {
  const refusal = world.reverseExchange(ids[0] ?? '');
  if (refusal !== undefined) return ap21Error(403, undefined, refusal);
  return { status: 200, headers: XML_HEADERS, body: '' };
}

function postReturn(world: Ap21World, { request, ids, context }: RouteCall): SimResponse {
  const order = pathOrder(world, ids);
  if (!order) return failureResponse(NO_DATA);
  if (!/xml/i.test(header(request, 'content-type') ?? '')) return ap21Error(403, AP21_ERROR_CODES.contentTypeNotXml, 'Request content type is not XML');
  let candidate: ReturnCandidate;
  try {
    candidate = readReturnCandidate(parseXml(request.body.toString('utf8')), context.version, world.currency);
  } catch (error) {
    if (error instanceof XmlError || error instanceof InvalidMoneyError)
      return ap21Error(403, AP21_ERROR_CODES.cannotDeserialise, 'Cannot deserialise payload');
    throw error;
  }
  const refusal = world.refusalOf(order, ids[0] ?? '', candidate);
  if (refusal) return ap21Error(403, ...refusal);
  const created = world.createReturn(order, candidate);
  const location = `/Persons/${order.personId}/Orders/${order.orderId}/Returns/${created.returnId}?countryCode=${param(request.query, 'countryCode')}`;
  return { status: 200, headers: { ...XML_HEADERS, location }, body: '' };
}

/** The endpoints, in match order; a new one is a line here and a function above. */
export const ROUTES: readonly Route[] = [
  { method: 'GET', pattern: /^\/Orders$/i, endpoint: 'GET /Orders', serve: (world, { request, context }) => changedOrders(world, request, context) },
  { method: 'GET', pattern: /^\/Persons\/(\d+)$/i, endpoint: 'GET /Persons/{pid}', serve: getPerson },
  { method: 'GET', pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)$/i, endpoint: 'GET /Persons/{pid}/Orders/{oid}', serve: getOrder },
  { method: 'GET', pattern: /^\/OrderNumbers\/([^/]+)$/i, endpoint: 'GET /OrderNumbers/{n}', serve: getOrderByNumber },
  {
    method: 'GET',
    pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)\/Returns$/i,
    endpoint: 'GET /Persons/{pid}/Orders/{oid}/Returns',
    serve: listReturns,
  },
  {
    method: 'GET',
    pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)\/Returns\/(\d+)$/i,
    endpoint: 'GET /Persons/{pid}/Orders/{oid}/Returns/{rid}',
    serve: getReturn,
  },
  {
    method: 'POST',
    pattern: /^\/Persons\/(\d+)\/Orders\/(\d+)\/Returns$/i,
    endpoint: 'POST /Persons/{pid}/Orders/{oid}/Returns',
    serve: postReturn,
  },
  { method: 'DELETE', pattern: /^\/Returns\/(\d+)$/i, endpoint: 'DELETE /Returns/{rid}', serve: deleteReturn },
];

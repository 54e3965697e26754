import type { SimRequest, SimResponse } from '../kit';
import { fromAp21DateTime } from '../../lambdas/providers/ap21/schemas';
import { AP21_ERROR_CODES } from '../../lambdas/providers/ap21/statuses';
import { orderDocument, withAttributes, type DocumentContext } from './documents';
import type { SimOrder, SimReturn } from './model';
import { ap21Error, failureResponse, NO_DATA, param, XML_HEADERS } from './wire';
import type { Ap21World } from './world';

/**
 * `GET /Orders?updatedAfter=`: the changed-orders feed (guide 2025.1): every order changed after
 * `updatedAfter` (Ap21's wall clock), oldest change first, paged by `startRow`/`pageRows` with
 * `TotalRows`; 5421 without `updatedAfter`, 5034 for bad paging. Returns are listed too, as orders
 * of their own, unless the world plays an installation whose feed shows none.
 */
export function changedOrders(world: Ap21World, request: SimRequest, context: DocumentContext): SimResponse {
  const { query } = request;
  const updatedAfter = param(query, 'updatedAfter');
  if (!updatedAfter) return ap21Error(403, AP21_ERROR_CODES.updatedAfterRequired, 'Request requires either personId, id, or updatedAfter to be set.');
  let since: number;
  try {
    since = Date.parse(fromAp21DateTime(updatedAfter, world.timeZone));
  } catch {
    return ap21Error(400, undefined, `Invalid updatedAfter ${updatedAfter}`);
  }
  const paging = ['startRow', 'pageRows'].map((name) => param(query, name));
  if (paging.some((value) => value !== undefined && !/^[1-9]\d{0,8}$/.test(value))) {
    return ap21Error(400, AP21_ERROR_CODES.invalidPagination, 'Invalid pagination parameters');
  }
  const startRow = Number(paging[0] ?? 1);
  const listed = world.listsReturnsInFeed ? [...world.allOrders(), ...world.allReturns().map((ret) => returnAsOrder(ret, context))] : world.allOrders();
  const changed = listed.filter((order) => order.updatedAt > since).sort((a, b) => a.updatedAt - b.updatedAt || Number(a.orderId) - Number(b.orderId));
  const rows = changed.slice(startRow - 1, startRow - 1 + Number(paging[1] ?? changed.length));
  if (rows.length === 0) return failureResponse(NO_DATA);
  const body = withAttributes(
    'Orders',
    { TotalRows: changed.length },
    rows.map((order, i) => orderDocument(order, startRow + i, world.person(order.personId), context)).join(''),
  );
  return { status: 200, headers: XML_HEADERS, body };
}

/** A return as the changed-orders feed lists it: an order of its own giving units back, naming the original by `OrigOrderNum`. */
function returnAsOrder(ret: SimReturn, context: DocumentContext): SimOrder {
  return {
    orderId: ret.returnId,
    personId: ret.personId,
    orderNumber: ret.orderNumber,
    lines: ret.lines,
    payments: context.version >= 4 ? ret.payments : [],
    orderedAt: ret.createdAt,
    updatedAt: ret.updatedAt ?? ret.createdAt,
    origOrderNumber: ret.origOrderNumber,
  };
}

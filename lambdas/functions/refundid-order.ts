import { BadRequestError } from '../commons/http-errors';
import { httpHandler, queryParam, type HttpRequest } from '../commons/http';
import { lazy } from '../commons/lazy';
import { TtlCache } from '../commons/ttl-cache';
import { parseOrReject } from '../commons/validation';
import type { Ap21Order } from '../providers/ap21/schemas';
import { loadRefundidConfig } from '../providers/refundid/config';
import { refundidInbound } from '../providers/refundid/inbound';
import { ORDER_QUERY_PARAMETERS, orderQuerySchema, type OrderQuery } from '../providers/refundid/schemas';
import { RefundidOrderDesk } from '../services/refundid-orders';
import { createAp21Client, createReturnIntake } from './ap21-runtime';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const { store } = rt;
const refundid = inboundCheck(rt, refundidInbound);
const settings = lazy(loadRefundidConfig);
/** Refundid waits on this answer: each Ap21 read is capped so a slow Ap21 still leaves time to answer within the route's deadline. */
const ORDER_AP21_TIMEOUT_MS = 8_000;
// One client and one cache per container: Ap21's throttle and the cache span invocations.
const desk = lazy(() => {
  const client = createAp21Client(rt, process.env, ORDER_AP21_TIMEOUT_MS);
  return new RefundidOrderDesk(store, client, createReturnIntake(rt), new TtlCache<Ap21Order>(settings().orderCacheTtlMs, settings().orderCacheMaxEntries));
});

/** Refundid forwards its redirect's parameters; more than this is not a redirect. */
const MAX_QUERY_PARAMETERS = 20;

function orderQuery(request: HttpRequest): OrderQuery {
  if (Object.keys(request.query).length > MAX_QUERY_PARAMETERS)
    throw new BadRequestError(`more than ${MAX_QUERY_PARAMETERS} query parameters`, 'too_many_parameters');
  const given: Record<string, string> = {};
  for (const name of ORDER_QUERY_PARAMETERS) {
    const value = queryParam(request, name);
    if (value !== undefined) given[name] = value;
  }
  return parseOrReject(orderQuerySchema, given, 'order query');
}

/** GET /refundid/order?order_number=&email=[&merchant_order_ref=…] → RapiOrder */
export const handler = httpHandler({ name: 'refundid.order', maxBodyBytes: 0 }, async (request) => {
  await refundid.verify(request);
  return { status: 200, body: await desk().find(orderQuery(request)) };
});

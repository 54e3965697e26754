import { BadRequestError } from '../commons/errors';
import { httpHandler, queryParam, type HttpRequest } from '../commons/http';
import { lazy } from '../commons/lazy';
import { sourceIpMatcher } from '../commons/source-ip';
import { TtlCache } from '../commons/ttl-cache';
import { parseOrReject } from '../commons/validation';
import { Ap21Client } from '../providers/ap21/client';
import { loadAp21Config } from '../providers/ap21/config';
import { ap21SecretSchema, type Ap21Order } from '../providers/ap21/schemas';
import { authenticateRefundid } from '../providers/refundid/auth';
import { loadRefundidConfig } from '../providers/refundid/config';
import { ORDER_QUERY_PARAMETERS, orderQuerySchema, refundidSecretSchema, type OrderQuery } from '../providers/refundid/schemas';
import { RefundidOrderDesk } from '../services/refundid-orders';
import { runtime } from './runtime';

const { store, secret } = runtime();
const refundidSecret = secret('refundid', refundidSecretSchema);
const settings = lazy(loadRefundidConfig);
const isRefundid = lazy(() => sourceIpMatcher(settings().allowedIps));
// One client and one cache per container: Ap21's throttle and the cache span invocations.
const desk = lazy(() => {
  const client = new Ap21Client(loadAp21Config(), secret('ap21', ap21SecretSchema));
  return new RefundidOrderDesk(store, client, new TtlCache<Ap21Order>(settings().orderCacheTtlMs, settings().orderCacheMaxEntries));
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
  await authenticateRefundid(refundidSecret, isRefundid(), request);
  return { status: 200, body: await desk().find(orderQuery(request)) };
});

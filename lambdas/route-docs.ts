import * as z from 'zod/mini';
import type { VerificationAnswer } from './domain/refund';
import { callbackPathSchema } from './functions/callback-path';
import { apaceNotificationSchema } from './providers/apace/schemas';
import { APACE_SIGNATURE_HEADER } from './providers/apace/signature';
import { opttyNotificationSchema } from './providers/optty/schemas';
import { payProIpnSchema } from './providers/paypro/ipn';
import { orderQuerySchema, rmaPushSchema, type RapiOrder } from './providers/refundid/schemas';
import { REFUND_STATES } from './domain/refund';

/**
 * What each inbound route of `routes.ts` accepts and answers, for the OpenAPI document
 * (`npm run openapi` → docs/openapi.json). Request schemas are the very zod schemas the handlers
 * validate with. Only the document generator imports this module; the Lambda bundles and the CDK
 * app do not. Adding a route is one entry in ROUTE_DOCS (a test fails while a route has none).
 */

/** An OpenAPI security scheme, named; routes sharing a name must share the definition. */
export interface SecurityScheme {
  readonly name: string;
  readonly definition: Readonly<Record<string, unknown>>;
}

export interface RouteDoc {
  readonly summary: string;
  readonly description: string;
  /** Every scheme listed is required together (one OpenAPI security requirement). Empty: no auth. */
  readonly security: readonly SecurityScheme[];
  readonly path?: z.ZodMiniObject;
  readonly query?: z.ZodMiniObject;
  /** Headers of note beyond those a security scheme names. */
  readonly headers?: z.ZodMiniObject;
  readonly body?: { readonly mediaType: string; readonly schema: z.ZodMiniType; readonly maxBytes: number };
  readonly success: { readonly status: number; readonly description: string; readonly schema: z.ZodMiniType };
  /** Statuses answered with the `{error: {code, message}}` body, and the codes each carries. */
  readonly errors: Readonly<Record<number, readonly string[]>>;
}

/** The one error body every handler answers with (`commons/http.ts` errorResponse). */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string().check(z.regex(/^[a-z_]+$/)),
    message: z.string(),
  }),
});

const verificationAnswerSchema = z.object({
  allow_refund: z.boolean(),
  refund_issued: z.optional(z.boolean()),
}) satisfies z.ZodMiniType<VerificationAnswer>;

const APACE_CALLBACK_TOKEN: SecurityScheme = {
  name: 'apaceCallbackToken',
  definition: {
    type: 'apiKey',
    in: 'query',
    name: 'auth_token',
    description:
      'Token refund-relay puts in each callback URL it hands Apace: `<keyId>.<expiry epoch s>.<base64url HMAC-SHA256>` over the purpose ' +
      '(verify or notify), order id, refund id and expiry. Two keys verify at once, so keys rotate without breaking live offers.',
  },
};

const APACE_WEBHOOK_SIGNATURE: SecurityScheme = {
  name: 'apaceWebhookSignature',
  definition: {
    type: 'apiKey',
    in: 'header',
    name: APACE_SIGNATURE_HEADER,
    description: 'Hex HMAC-SHA256 of the exact request body, keyed by the Apace API secret.',
  },
};

const REFUNDID_BEARER: SecurityScheme = {
  name: 'refundidBearer',
  definition: {
    type: 'http',
    scheme: 'bearer',
    description:
      "The token refund-relay gives Refundid (`bearerToken` of the `refundid` secret). Calls must also come from Refundid's published addresses (`x-ip-allowlist`).",
  },
};

const PAYPRO_IPN_SIGNATURE: SecurityScheme = {
  name: 'payproIpnSignature',
  definition: {
    type: 'apiKey',
    in: 'query',
    name: 'HASH',
    description:
      'Carried in the form body, not the query: `HASH` = MD5(ORDER_ID + IPN secret key) and `SIGNATURE` = SHA-256 of ORDER_ID, ORDER_STATUS, ORDER_TOTAL_AMOUNT, ' +
      "CUSTOMER_EMAIL, validation key, TEST_MODE and IPN_TYPE_NAME; the sender must be one of PayPro's published addresses.",
  },
};

const OPTTY_URL_TOKEN: SecurityScheme = {
  name: 'opttyNotificationToken',
  definition: {
    type: 'apiKey',
    in: 'query',
    name: 'token',
    description:
      'The `notificationSecret` of the `optty` secret, in the notification URL registered with Optty. The message itself is only a hint: it is confirmed with Optty before anything changes.',
  },
};

const AP21_PUSH_AUTH: SecurityScheme = {
  name: 'ap21PushAuth',
  definition: {
    type: 'http',
    scheme: 'basic',
    description:
      'User `ap21`, password the `pushApiKey` of the `ap21` secret; or the same key alone in an `x-api-key` header (exactly one of the two). ' +
      "Calls must also come from the retailer's Ap21 push addresses (`x-ip-allowlist`).",
  },
};

const rapiAmountSchema = z.object({ amount: z.string(), currency: z.string() });
const rapiOrderSchema = z.object({
  merchant_order_ref: z.string(),
  order_number: z.string(),
  email: z.string(),
  purchased_at: z.string(),
  payment_method: z.string(),
  is_giftcard_used: z.boolean(),
  line_items: z.array(
    z.object({
      line_item_ref: z.string(),
      title: z.string(),
      price: rapiAmountSchema,
      quantity: z.int(),
      returnable_quantity: z.int(),
      product_ref: z.string(),
      variant_ref: z.optional(z.string()),
      sku: z.optional(z.string()),
      non_returnable_reasons: z.array(z.string()),
    }),
  ),
}) satisfies z.ZodMiniType<RapiOrder>;

const receivedSchema = z.object({ received: z.literal(true) });
const REFUNDID_AUTH_ERRORS = { 401: ['missing_token', 'invalid_token'], 403: ['forbidden_source'] };

const APACE_PATH_ERRORS = ['invalid_path', 'repeated_parameter'];
const APACE_TOKEN_ERRORS = ['missing_token', 'invalid_token', 'expired_token'];

/** Keyed by `<METHOD> <path>` exactly as in ROUTES. */
export const ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'GET /apace/orders/{orderId}/refunds/{refundId}/verification': {
    summary: 'Apace asks whether it may pay a refund',
    description:
      'Apace calls this during offer creation and again just before payout. The call is recorded (it opens the claim window during ' +
      'which the refund cannot leave Apace) and answered from the refund state in one DynamoDB round trip: `allow_refund: true` ' +
      'while the offer is live; `refund_issued: true` when the refund went out through another channel.',
    security: [APACE_CALLBACK_TOKEN],
    path: callbackPathSchema,
    success: { status: 200, description: 'Whether Apace may pay now', schema: verificationAnswerSchema },
    errors: {
      400: APACE_PATH_ERRORS,
      401: APACE_TOKEN_ERRORS,
      404: ['refund_not_found'],
      413: ['payload_too_large'],
      500: ['internal_error'],
    },
  },
  'POST /apace/orders/{orderId}/refunds/{refundId}/notification': {
    summary: 'Apace reports a payout (pending, processed or failed)',
    description:
      'Authenticated by the URL token and the body signature, validated, and applied idempotently: `pending` marks the refund paid, ' +
      '`processed` also confirms it, in either order. A duplicate or late notification is acknowledged and kept, never applied twice.',
    security: [APACE_CALLBACK_TOKEN, APACE_WEBHOOK_SIGNATURE],
    path: callbackPathSchema,
    body: { mediaType: 'application/json', schema: apaceNotificationSchema, maxBytes: 32 * 1024 },
    success: { status: 200, description: 'Received (applied, or kept as a duplicate)', schema: z.object({ received: z.literal(true) }) },
    errors: {
      400: [...APACE_PATH_ERRORS, 'malformed_json', 'invalid_encoding'],
      401: [...APACE_TOKEN_ERRORS, 'missing_signature', 'invalid_signature'],
      404: ['order_not_found', 'refund_not_found'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_request', 'order_mismatch'],
      500: ['internal_error'],
      503: ['busy'],
    },
  },
  'GET /refundid/order': {
    summary: 'Refundid fetches an order, with what is still returnable',
    description:
      "Answered from the Ap21 order (read through the Ap21 client, cached briefly) in Refundid's RapiOrder model. `returnable_quantity` comes from " +
      "refund-relay's ledger: units refunded or in flight through any channel are not returnable. An unknown order and a wrong e-mail get the same 404.",
    security: [REFUNDID_BEARER],
    query: orderQuerySchema,
    success: { status: 200, description: 'The order as Refundid models it', schema: rapiOrderSchema },
    errors: {
      400: ['repeated_parameter', 'too_many_parameters'],
      ...REFUNDID_AUTH_ERRORS,
      404: ['order_not_found'],
      422: ['invalid_request'],
      500: ['internal_error'],
      503: ['temporarily_unavailable'],
    },
  },
  'POST /refundid/refund': {
    summary: 'Refundid pushes an RMA status (refunding, refundid, failed)',
    description:
      '`refunding` reserves the units (409 naming the line when they are not available), `refundid` marks them paid via Refundid, `failed` releases them. ' +
      "Idempotent on Refundid's ids; out-of-order pushes are handled and kept.",
    security: [REFUNDID_BEARER],
    body: { mediaType: 'application/json', schema: rmaPushSchema, maxBytes: 64 * 1024 },
    success: {
      status: 200,
      description: 'The refund the RMA maps to, and its state now',
      schema: z.object({ received: z.literal(true), refund_id: z.string(), state: z.enum([...REFUND_STATES, 'not_reserved']) }),
    },
    errors: {
      400: ['malformed_json', 'invalid_encoding'],
      ...REFUNDID_AUTH_ERRORS,
      404: ['order_not_found'],
      409: ['units_unavailable', 'refund_conflict', 'transition_rejected'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_request', 'invalid_refund'],
      500: ['internal_error'],
      503: ['busy'],
    },
  },
  'POST /providers/paypro/ipn': {
    summary: 'PayPro instant payment notification',
    description:
      'Verified (source address, HASH, SIGNATURE), stored once per notification (resends land on the first record), then types 2 (OrderRefunded) and 5 ' +
      '(OrderPartiallyRefunded) settle the card reversal named in ACTION_REASON. Answers 200 only once stored: PayPro retries anything else.',
    security: [PAYPRO_IPN_SIGNATURE],
    body: { mediaType: 'application/x-www-form-urlencoded', schema: payProIpnSchema, maxBytes: 32 * 1024 },
    success: { status: 200, description: 'Stored', schema: receivedSchema },
    errors: {
      400: ['bad_request', 'invalid_encoding', 'repeated_parameter'],
      401: ['invalid_hash', 'invalid_signature'],
      403: ['forbidden_source', 'test_mode'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_request'],
      500: ['internal_error'],
    },
  },
  'POST /providers/optty/notifications': {
    summary: 'Optty notification (a hint, confirmed with Optty)',
    description:
      'Optty signs nothing, so the message is stored and then confirmed by reading the transaction details from Optty; only a SUCCESSFUL refund there ' +
      "settles ours. Otherwise the dispatcher's follow-up is brought forward, never into a running lease.",
    security: [OPTTY_URL_TOKEN],
    body: { mediaType: 'application/json', schema: opttyNotificationSchema, maxBytes: 16 * 1024 },
    success: { status: 200, description: 'Stored', schema: receivedSchema },
    errors: {
      400: ['malformed_json', 'invalid_encoding', 'repeated_parameter'],
      401: ['missing_token', 'invalid_token'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_request'],
      500: ['internal_error'],
    },
  },
  'POST /providers/addon-payments/status': {
    summary: 'Addon Payments (EPG) status notification (a hint)',
    description:
      'EPG notifications carry no verifiable signature and EPG documents no status query for a rebate, so a notification never moves money: it is stored ' +
      "and brings the follow-up of a submitted reversal forward. The body is EPG's `<response>` XML, or JSON with a `response` key.",
    security: [],
    body: { mediaType: 'application/xml', schema: z.string(), maxBytes: 32 * 1024 },
    success: { status: 200, description: 'Received', schema: receivedSchema },
    errors: {
      400: ['malformed_xml', 'malformed_json', 'invalid_encoding'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_request'],
      500: ['internal_error'],
    },
  },
  'POST /ap21/returns': {
    summary: 'The Ap21-side integration reports a return',
    description:
      'A `<ReturnOrder>` naming the return (`Id`), its `PersonId` and the original order (`OrigOrderId`, its Ap21 id; optional `OrderNumber`, ' +
      '`OrigOrderNum`), with `OrderDetails/OrderDetail` lines of `SkuId`, a negative `Quantity` and optional `ReturnReasonId`; any other element is refused. ' +
      'Stored once per return before the 202; then the order and the return are read from Ap21, which alone says whether Refundid or Ap21 already ' +
      'refunded it, and ingested as the poller would (one refund per return). A push Ap21 could not serve yet stays pending and the poller finishes it. ' +
      'Also accepted as `text/xml`; UTF-8 only.',
    security: [AP21_PUSH_AUTH],
    body: { mediaType: 'application/xml', schema: z.string(), maxBytes: 64 * 1024 },
    success: {
      status: 202,
      description: 'Stored; `status` says how far processing got (`pending`: the poller retries it)',
      schema: z.object({ received: z.literal(true), duplicate: z.boolean(), return_id: z.string(), status: z.enum(['pending', 'processed', 'failed']) }),
    },
    errors: {
      400: ['malformed_xml', 'invalid_return', 'invalid_encoding'],
      401: ['missing_credentials', 'invalid_credentials'],
      403: ['forbidden_source'],
      409: ['push_conflict'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_request'],
      500: ['internal_error'],
      503: ['not_configured', 'busy'],
    },
  },
  'GET /health': {
    summary: 'Liveness',
    description: 'Answers without touching DynamoDB: the API is up, not that its dependencies are.',
    security: [],
    success: { status: 200, description: 'The API is up', schema: z.object({ ok: z.literal(true) }) },
    errors: { 413: ['payload_too_large'], 500: ['internal_error'] },
  },
};

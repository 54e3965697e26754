import * as z from 'zod/mini';
import { MEDIA_TYPES } from '../../lambdas/commons/media-types';
import type { VerificationAnswer } from '../../lambdas/providers/apace/schemas';
import { callbackPathSchema } from '../../lambdas/functions/callback-path';
import { apaceNotificationSchema } from '../../lambdas/providers/apace/schemas';
import { APACE_SIGNATURE_HEADER } from '../../lambdas/providers/apace/signature';
import { opttyNotificationSchema } from '../../lambdas/providers/optty/schemas';
import { payProIpnSchema } from '../../lambdas/providers/paypro/ipn';
import { MAX_PUSH_BYTES } from '../../lambdas/services/ap21-push';
import { orderQuerySchema, rmaPushSchema, type RapiOrder } from '../../lambdas/providers/refundid/schemas';
import { REFUND_STATES } from '../../lambdas/domain/refund';

/**
 * What each inbound route of `lambdas/routes.ts` accepts and answers, for the OpenAPI document
 * (`npm run openapi` → docs/openapi.json). Request schemas are the very zod schemas the handlers
 * validate with. Only the document generator imports this module; the Lambda bundles and the CDK
 * app do not. Adding a route is one entry in ROUTE_DOCS (a test fails while a route has none).
 */

/** An OpenAPI security scheme, named; routes sharing a name must share the definition. */
export interface SecurityScheme {
  readonly name: string;
  readonly definition: Readonly<Record<string, unknown>>;
}

export interface Example {
  readonly summary: string;
  /** For XML and form bodies, the text exactly as sent. */
  readonly value: unknown;
}

/** A request body in one media type: the handler's own zod schema, or for XML a JSON Schema with `xml` names (OpenAPI's way to describe XML). */
export interface BodyContent {
  readonly schema: { readonly zod: z.ZodMiniType } | { readonly jsonSchema: Readonly<Record<string, unknown>> };
  readonly examples: Readonly<Record<string, Example>>;
}

export interface RouteDoc {
  readonly summary: string;
  readonly description: string;
  /** Every scheme listed is required together (one OpenAPI security requirement). Empty: no auth. */
  readonly security: readonly SecurityScheme[];
  readonly path?: z.ZodMiniObject;
  readonly query?: z.ZodMiniObject;
  /** Headers of note beyond those a security scheme names (x-correlation-id is on every route). */
  readonly headers?: z.ZodMiniObject;
  /** Keyed by media type: exactly those the handler accepts (lambdas/commons/media-types.ts). */
  readonly body?: { readonly maxBytes: number; readonly content: Readonly<Record<string, BodyContent>> };
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

/** The same schema and examples under every media type the handler takes. */
const bodyIn = (mediaTypes: readonly string[], maxBytes: number, content: BodyContent): RouteDoc['body'] => ({
  maxBytes,
  content: Object.fromEntries(mediaTypes.map((type) => [type, content])),
});

/** `<ReturnOrder>` as services/ap21-push.ts reads it: these elements and no others. */
const AP21_ID = { type: 'string', pattern: '^\\d{1,22}$' };
const AP21_RETURN_ORDER = {
  type: 'object',
  xml: { name: 'ReturnOrder' },
  description:
    "Ap21's own `<ReturnOrder>`, as `GET /Persons/{pid}/Orders/{oid}/Returns/{rid}` answers it (any payload version). Only the elements " +
    'below are read; every other element, anywhere, is ignored. The original order is named by `OrigOrderNum` (Ap21 sends it from version 2.0) ' +
    "or by `OrigOrderId`, its Ap21 id (refund-relay's earlier small form; it wins when both are given).",
  required: ['Id', 'PersonId', 'OrderDetails'],
  additionalProperties: true,
  properties: {
    Id: { ...AP21_ID, description: "The return's Ap21 id" },
    PersonId: { ...AP21_ID, description: 'The customer (Ap21 person id)' },
    OrigOrderNum: { type: 'string', maxLength: 30, description: 'The original order number, looked up with `GET /OrderNumbers/{n}`' },
    OrigOrderId: { ...AP21_ID, description: "The original order's Ap21 id (not an Ap21 element; needed when OrigOrderNum is absent)" },
    OrderNumber: { type: 'string', maxLength: 64 },
    OrderDetails: {
      type: 'array',
      maxItems: 500,
      minItems: 1,
      xml: { wrapped: true },
      items: {
        type: 'object',
        xml: { name: 'OrderDetail' },
        required: ['SkuId', 'Quantity'],
        additionalProperties: true,
        properties: {
          SkuId: AP21_ID,
          Quantity: { type: 'integer', maximum: -1, minimum: -100000, description: 'Returned units, negative as in Ap21' },
          ReturnReasonId: AP21_ID,
        },
      },
    },
  },
};

/** A return as Ap21 answers `GET …/Returns/{rid}` at version 4.0 (Retail API guide pp.150–151), as an integration pushes it. */
const AP21_RETURN_DOCUMENT_EXAMPLE = [
  '<?xml version="1.0" encoding="utf-8"?>',
  '<ReturnOrder xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
  '  <Id>62347</Id>',
  '  <RowNumber>0</RowNumber>',
  '  <OrderNumber>W0020784-R1</OrderNumber>',
  '  <PersonId>3583</PersonId>',
  '  <WarehouseId>9441</WarehouseId>',
  '  <OrderDateTime>2025-03-04T12:22:10</OrderDateTime>',
  '  <TotalQuantity>-1</TotalQuantity>',
  '  <TotalTax>-5.45</TotalTax>',
  '  <TotalDiscount>0</TotalDiscount>',
  '  <TotalDue>-59.90</TotalDue>',
  '  <TotalPayment>0.00</TotalPayment>',
  '  <PickupStoreId />',
  '  <DeliveryInstructions />',
  '  <DespatchType>DespatchFromWarehouse</DespatchType>',
  '  <Addresses />',
  '  <Contacts><Email /><Phones><Home /><Mobile /><Work /></Phones></Contacts>',
  '  <DeliveryContacts><Email /><Phones><Home /><Mobile /><Work /></Phones></DeliveryContacts>',
  '  <OrderDetails Type="Array" TotalRows="1">',
  '    <OrderDetail>',
  '      <Id>56026</Id>',
  '      <Sequence>1</Sequence>',
  '      <ProductId>3566</ProductId>',
  '      <ColourId>4054</ColourId>',
  '      <SkuId>21503</SkuId>',
  '      <ProductCode>LS100</ProductCode>',
  '      <ProductName>LINEN SHIRT</ProductName>',
  '      <ColourCode>NAV</ColourCode>',
  '      <ColourName>NAVY</ColourName>',
  '      <SizeCode>M</SizeCode>',
  '      <Quantity>-1</Quantity>',
  '      <Price>59.90</Price>',
  '      <Discount>0.00</Discount>',
  '      <Value>-59.90</Value>',
  '      <TaxPercent>10</TaxPercent>',
  '      <QuantityTaken>0</QuantityTaken>',
  '      <QuantityPacked>0</QuantityPacked>',
  '      <ReturnReasonId>10365</ReturnReasonId>',
  '      <ReturnReasonNotes />',
  '      <GiftWrap>false</GiftWrap>',
  '      <GiftWrapMessage />',
  '      <SenderName />',
  '      <ReceiverName />',
  '      <Carrier />',
  '      <CarrierUrl />',
  '      <ConNote />',
  '      <Status>Processing</Status>',
  '    </OrderDetail>',
  '  </OrderDetails>',
  '  <SelectedFreightOption><Id /><Name /><Value>0</Value><TaxPercent xsi:nil="true" /></SelectedFreightOption>',
  '  <Payments />',
  "  <Currency><Code>AUD</Code><Format>#,##0.00 'AUD'</Format></Currency>",
  '  <PricesIncludeTax>false</PricesIncludeTax>',
  '  <PointsPartner><Id /><Name /><MembershipNumber /></PointsPartner>',
  '  <OrigOrderNum>W0020784</OrigOrderNum>',
  '  <ReturnAuthorisationNumber>6026</ReturnAuthorisationNumber>',
  '</ReturnOrder>',
  '',
].join('\n');

const AP21_RETURN_EXAMPLE =
  '<?xml version="1.0" encoding="utf-8"?>\n<ReturnOrder>\n  <Id>80231</Id>\n  <PersonId>771201</PersonId>\n  <OrigOrderId>1045332</OrigOrderId>\n  <OrderNumber>R-80231</OrderNumber>\n' +
  '  <OrigOrderNum>W1045332</OrigOrderNum>\n  <OrderDetails>\n    <OrderDetail>\n      <SkuId>5012345</SkuId>\n      <Quantity>-1</Quantity>\n      <ReturnReasonId>12</ReturnReasonId>\n' +
  '    </OrderDetail>\n  </OrderDetails>\n</ReturnOrder>\n';

/** An EPG operation as its notifications carry it (the fields refund-relay reads; EPG sends more). */
const EPG_OPERATION_FIELDS = {
  status: { type: 'string', description: 'SUCCESS, PENDING, REDIRECTED, ERROR or FAIL' },
  operationType: { type: 'string' },
  merchantTransactionId: { type: 'string', description: "refund-relay's refund id, sent as the rebate's reference" },
  transactionId: { type: 'string' },
  originalTransactionId: { type: 'string' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  message: { type: 'string' },
};
const EPG_STATUS_XML = {
  type: 'object',
  xml: { name: 'response' },
  properties: {
    status: { type: 'string' },
    message: { type: 'string' },
    operations: {
      type: 'array',
      xml: { wrapped: true },
      items: { type: 'object', xml: { name: 'operation' }, required: ['status', 'merchantTransactionId'], properties: EPG_OPERATION_FIELDS },
    },
  },
};
const EPG_STATUS_JSON = {
  type: 'object',
  required: ['response'],
  properties: {
    response: {
      type: 'object',
      properties: {
        status: { type: 'string' },
        message: { type: 'string' },
        operationsArray: { type: 'array', items: { type: 'object', required: ['status', 'merchantTransactionId'], properties: EPG_OPERATION_FIELDS } },
      },
    },
  },
};
const EPG_STATUS_XML_EXAMPLE =
  '<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <status>SUCCESS</status>\n  <operations>\n    <operation sorted-order="1">\n      <status>SUCCESS</status>\n' +
  '      <operationType>REBATE</operationType>\n      <merchantTransactionId>ap21-80231</merchantTransactionId>\n      <transactionId>7893412</transactionId>\n' +
  '      <amount>49.95</amount>\n      <currency>AUD</currency>\n    </operation>\n  </operations>\n</response>\n';
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
      'Authenticated by the URL token and the body signature, validated, stored, and applied idempotently: `pending` marks the refund paid, ' +
      '`processed` also confirms it, in either order; `failed` sends the refund to card reversal. A duplicate or late notification is ' +
      'acknowledged and kept, never applied twice; one that contradicts what refund-relay knows (`pending` after `failed`, anything for a ' +
      "cancelled offer) is acknowledged and applied only once Apace's own record confirms it. `order_id` is the offer's: the order number " +
      "the customer knows (or, for an order without one, refund-relay's order id); any other is `order_mismatch`.",
    security: [APACE_CALLBACK_TOKEN, APACE_WEBHOOK_SIGNATURE],
    path: callbackPathSchema,
    body: bodyIn(MEDIA_TYPES.json, 32 * 1024, {
      schema: { zod: apaceNotificationSchema },
      examples: {
        pending: {
          summary: 'Apace has paid the customer (refund-relay books the refund paid)',
          value: { refund_id: 'rf_8KQ2x1', order_id: '1045332', refund_success: false, refund_status: 'pending', date_created: '2026-11-30T02:14:09Z' },
        },
        processed: {
          summary: 'The payout is confirmed',
          value: {
            refund_id: 'rf_8KQ2x1',
            order_id: '1045332',
            refund_success: true,
            refund_status: 'processed',
            datetime_refund_sent: '2026-11-30T02:16:40Z',
          },
        },
      },
    }),
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
      "refund-relay's ledger: units refunded or in flight through any channel are not returnable. An order refund-relay has not opened yet (placed " +
      'before it went live, or not polled yet) is read from Ap21 by its number (`GET /OrderNumbers/{n}`) and its ledger opened, as the poller would. ' +
      'Only an order Ap21 does not have, or a wrong e-mail, gets the (same) 404; Ap21 unavailable is a 503 worth retrying.',
    security: [REFUNDID_BEARER],
    query: orderQuerySchema,
    success: { status: 200, description: 'The order as Refundid models it', schema: rapiOrderSchema },
    errors: {
      400: ['repeated_parameter', 'too_many_parameters'],
      ...REFUNDID_AUTH_ERRORS,
      404: ['order_not_found'],
      422: ['invalid_request', 'nothing_to_return'],
      500: ['internal_error'],
      503: ['temporarily_unavailable', 'ap21_unavailable'],
    },
  },
  'POST /refundid/refund': {
    summary: 'Refundid pushes an RMA status (refunding, refundid, failed)',
    description:
      '`refunding` reserves the units (409 naming the line when they are not available, 422 `not_returnable` for a unit the order fetch answered 0 returnable), `refundid` marks them paid via Refundid, `failed` releases them. ' +
      "Idempotent on Refundid's ids; out-of-order pushes are handled and kept. A push for a Refundid refund the Ap21 poller already recorded " +
      "(a return or negative order with a Refundid payment, named by the push's ids or with exactly its units) is attached to that refund and answered 200 " +
      'with its id; only other line items than it holds are a 409 (`refund_conflict`). ' +
      'Refundid has paid by the time it pushes `refundid`: such a push refused (4xx) is kept for an operator, and one for units another refund ' +
      'holds (409 `units_unavailable`) also stops that refund before it sends money (card reversal to manual review, Apace offer cancelled first). ' +
      "Fields the refund does not read (a line's `price`) are not validated; ids may be strings or whole numbers.",
    security: [REFUNDID_BEARER],
    body: bodyIn(MEDIA_TYPES.json, 64 * 1024, {
      schema: { zod: rmaPushSchema },
      examples: {
        refunding: {
          summary: 'Refundid starts refunding two units of one line',
          value: {
            refundid_id: 'RMA-55120',
            merchant_rma_ref: null,
            status: 'refunding',
            line_items: [{ merchant_order_ref: '1045332', line_item_ref: '1045332-1', quantity: 2, price: { amount: '49.95', currency: 'AUD' } }],
          },
        },
      },
    }),
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
      422: ['invalid_request', 'invalid_refund', 'not_returnable'],
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
    body: bodyIn(MEDIA_TYPES.form, 32 * 1024, {
      schema: { zod: payProIpnSchema },
      examples: {
        orderRefunded: {
          summary: 'IPN type 2 (OrderRefunded) for a refund refund-relay asked for',
          value:
            'ORDER_ID=84512377&ORDER_STATUS=Refunded&ORDER_STATUS_ID=6&ORDER_TOTAL_AMOUNT=49.95&ORDER_CURRENCY_CODE=AUD&IPN_TYPE_ID=2&IPN_TYPE_NAME=OrderRefunded' +
            '&TEST_MODE=0&REFUND_ISSUED_BY=Vendor&ACTION_REASON=refund-relay%20ap21-80231&CUSTOMER_EMAIL=customer%40example.com' +
            '&HASH=0cc175b9c0f1b6a831c399e269772661&SIGNATURE=2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae',
        },
      },
    }),
    success: { status: 200, description: 'Stored', schema: receivedSchema },
    errors: {
      400: ['bad_request', 'invalid_encoding', 'repeated_field'],
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
    body: bodyIn(MEDIA_TYPES.json, 16 * 1024, {
      schema: { zod: opttyNotificationSchema },
      examples: {
        refundCallback: {
          summary: 'Optty reports a refund (confirmed with Optty before anything changes)',
          value: { event: 'REFUND_CALLBACK', status: 'SUCCESSFUL', transactionId: 'op_71c0b2', refundReference: 'ap21-80231', orderReference: '1045332' },
        },
      },
    }),
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
      "and brings the follow-up of a submitted reversal forward. The body is EPG's `<response>` XML (`application/xml` or `text/xml`), or JSON with a " +
      '`response` key, the two forms its SDKs read; the body must be of the type it declares.',
    security: [],
    body: {
      maxBytes: 32 * 1024,
      content: Object.fromEntries(
        MEDIA_TYPES.addonPaymentsStatus.map((type) => [
          type,
          type === 'application/json'
            ? {
                schema: { jsonSchema: EPG_STATUS_JSON },
                examples: {
                  rebate: {
                    summary: 'The JSON form',
                    value: {
                      response: { status: 'SUCCESS', operationsArray: [{ status: 'SUCCESS', merchantTransactionId: 'ap21-80231', transactionId: '7893412' }] },
                    },
                  },
                },
              }
            : { schema: { jsonSchema: EPG_STATUS_XML }, examples: { rebate: { summary: 'A rebate EPG reports done', value: EPG_STATUS_XML_EXAMPLE } } },
        ]),
      ),
    },
    success: { status: 200, description: 'Received', schema: receivedSchema },
    errors: {
      400: ['content_type_mismatch', 'invalid_encoding'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      422: ['invalid_notification'],
      500: ['internal_error'],
    },
  },
  'POST /ap21/returns': {
    summary: 'The Ap21-side integration reports a return',
    description:
      "Ap21's own `<ReturnOrder>`, as the Retail API answers `GET /Persons/{pid}/Orders/{oid}/Returns/{rid}`: the return (`Id`), its `PersonId`, " +
      'the original order by `OrigOrderNum` (found with `GET /OrderNumbers/{n}`) or by `OrigOrderId` (its Ap21 id), and `OrderDetails/OrderDetail` lines ' +
      'of `SkuId`, a negative `Quantity` and optional `ReturnReasonId`. Every other element, of any Ap21 version, is ignored; a needed element missing, ' +
      'repeated or holding elements is a 400 naming it, a wrong value a 422. Stored once per return before the 202; then the order and the return are read from Ap21, which alone says whether Refundid or Ap21 already ' +
      'refunded it, and ingested as the poller would (one refund per return). A push Ap21 could not serve yet stays pending and the poller finishes it. ' +
      'UTF-8 only.',
    security: [AP21_PUSH_AUTH],
    body: bodyIn(MEDIA_TYPES.ap21Push, MAX_PUSH_BYTES, {
      schema: { jsonSchema: AP21_RETURN_ORDER },
      examples: {
        ap21Document: { summary: "Ap21's own document: one unit of one line returned (version 4.0)", value: AP21_RETURN_DOCUMENT_EXAMPLE },
        smallForm: { summary: 'The small form: the original order by its Ap21 id', value: AP21_RETURN_EXAMPLE },
      },
    }),
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

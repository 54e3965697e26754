import * as z from 'zod/mini';
import type { VerificationAnswer } from './domain/refund';
import { callbackPathSchema } from './functions/callback-path';
import { apaceNotificationSchema } from './providers/apace/schemas';
import { APACE_SIGNATURE_HEADER } from './providers/apace/signature';

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
  'GET /health': {
    summary: 'Liveness',
    description: 'Answers without touching DynamoDB: the API is up, not that its dependencies are.',
    security: [],
    success: { status: 200, description: 'The API is up', schema: z.object({ ok: z.literal(true) }) },
    errors: { 413: ['payload_too_large'], 500: ['internal_error'] },
  },
};

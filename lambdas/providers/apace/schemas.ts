import * as z from 'zod/mini';
import type { VerificationDecision } from '../../domain/refund';

const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;

/**
 * Secret `apace` (JSON). `publicId`/`apiSecret` are the Apace API key pair (the secret also signs
 * Apace's webhooks). `callbackKeys` are our own keys for the tokens in the callback URLs;
 * `callbackKeyId` names the one that signs new URLs, the others still verify live ones.
 */
export const apaceSecretSchema = z
  .object({
    publicId: z.string().check(z.minLength(1)),
    apiSecret: z.string().check(z.minLength(1)),
    callbackKeys: z.record(z.string().check(z.regex(KEY_ID)), z.string().check(z.minLength(32))),
    callbackKeyId: z.string().check(z.regex(KEY_ID)),
  })
  .check(z.refine((secret) => Object.hasOwn(secret.callbackKeys, secret.callbackKeyId), 'callbackKeyId must name one of callbackKeys'));

export type ApaceSecret = z.infer<typeof apaceSecretSchema>;

/**
 * The refund webhook body (docs: "Refund successful webhook"). Apace may add fields, so unknown
 * ones are kept rather than refused; the ones we act on are checked. Older Apace versions send no
 * `refund_status`, only `refund_success`.
 */
export const apaceNotificationSchema = z.looseObject({
  refund_id: z.union([z.string().check(z.minLength(1), z.maxLength(128)), z.int()]),
  order_id: z.string().check(z.minLength(1), z.maxLength(128)),
  refund_success: z.boolean(),
  refund_status: z.optional(z.enum(['pending', 'processed', 'failed'])),
  date_created: z.optional(z.nullable(z.string().check(z.maxLength(64)))),
  datetime_refund_sent: z.optional(z.nullable(z.string().check(z.maxLength(64)))),
  item_ids: z.optional(z.array(z.union([z.string().check(z.maxLength(128)), z.int()])).check(z.maxLength(1000))),
});

export type ApaceNotification = z.infer<typeof apaceNotificationSchema>;

export type ApaceNotificationKind = 'pending' | 'processed' | 'failed';

export function notificationKind(notification: ApaceNotification): ApaceNotificationKind {
  return notification.refund_status ?? (notification.refund_success ? 'processed' : 'pending');
}

/**
 * Our answer to Apace's verification call (docs/design.md §2.3): `refund_issued: true` tells the
 * customer the normal refund already went out through another channel.
 */
export interface VerificationAnswer {
  readonly allow_refund: boolean;
  readonly refund_issued?: boolean;
}

const VERIFICATION_ANSWERS: Readonly<Record<VerificationDecision, VerificationAnswer>> = {
  allowed: { allow_refund: true },
  issued_elsewhere: { allow_refund: false, refund_issued: true },
  refused: { allow_refund: false },
};

export function verificationAnswer(decision: VerificationDecision): VerificationAnswer {
  return VERIFICATION_ANSWERS[decision];
}

/** The create-offer body (docs "Create Refund Offer"); optional fields are left out, never null. */
export interface ApaceCreateOfferBody {
  readonly card_last_four: string;
  readonly order_id: string;
  readonly refund_amount: string;
  readonly items: readonly {
    readonly item_id: string;
    readonly display_name: string;
    readonly sku?: string;
    readonly unit_price?: string;
    readonly return_qty?: number;
    readonly item_url?: string;
  }[];
  readonly expiration_date: string;
  readonly order_date?: string;
  readonly order_url?: string;
  readonly customer?: { readonly first_name?: string; readonly last_name?: string; readonly email?: string };
  readonly refund_verification: { readonly url: string; readonly method: 'GET' };
  readonly refund_notification: { readonly webhook_url: string; readonly redirect_url?: string };
}

const apaceId = z.union([z.string().check(z.minLength(1), z.maxLength(128)), z.int()]);

/** 200 (the swagger says 201) to a create; `refund_id` is a UUID in the docs, a number in the swagger. */
export const apaceOfferCreatedSchema = z.looseObject({
  refund_created: z.literal(true),
  refund_link: z.string().check(z.minLength(1)),
  refund_id: apaceId,
  active_until: z.string().check(z.minLength(1)),
});

/** 400 (error_code 5001) and 500 (5010) answers to create and cancel: every problem at once. */
export const apaceErrorListSchema = z.looseObject({
  errors: z.array(z.looseObject({ error_code: z.number(), error_message: z.string() })),
});

/** 400 to Send Refund Offer Email: here `errors` is one object, not a list. */
export const apaceEmailErrorSchema = z.looseObject({
  email_sent: z.literal(false),
  errors: z.looseObject({ error_code: z.number(), error_message: z.string() }),
});

/** 401, 404 and 429 answers: `{success: false, message}`. */
export const apaceMessageSchema = z.looseObject({ success: z.literal(false), message: z.string() });

export const apaceEmailSentSchema = z.looseObject({ email_sent: z.literal(true) });

export const apaceCancelledSchema = z.looseObject({ success: z.literal(true), canceled: z.literal(true) });

/** `refundData` of GET /ext/refunds/:id (code evidence); only the fields we read are checked. */
const apaceRefundDetailsSchema = z.looseObject({
  id: apaceId,
  orderId: z.string(),
  productIds: z.array(z.string()),
  status: z.string(),
  expirationDate: z.string(),
  expired: z.optional(z.boolean()),
  refundLink: z.optional(z.nullable(z.string())),
  amount: z.optional(z.union([z.number(), z.string()])),
});

export type ApaceRefundDetails = z.infer<typeof apaceRefundDetailsSchema>;

export const apaceRefundFoundSchema = z.looseObject({ success: z.literal(true), refundData: apaceRefundDetailsSchema });

/**
 * GET /ext/refunds (code evidence): newest first, `cursor` is a page number. The entries carry
 * no order id or items, so matching an offer to an order needs the details of each candidate.
 */
export const apaceRefundListSchema = z.looseObject({
  success: z.literal(true),
  refunds: z.array(
    z.looseObject({
      id: apaceId,
      status: z.optional(z.string()),
      createdAt: z.optional(z.string()),
      expired: z.optional(z.boolean()),
    }),
  ),
  nextCursor: z.optional(z.nullable(z.number())),
});

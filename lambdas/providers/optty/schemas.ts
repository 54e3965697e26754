import * as z from 'zod/mini';
import '../../commons/validation';

/**
 * Secret `optty` (JSON): the OAuth client issued by Optty, our merchant id for transaction details,
 * and `notificationSecret`, ours: the `?token=` in the notification URL we register with Optty
 * (its notifications carry no signature). Without it the notification route refuses every call.
 */
export const opttySecretSchema = z.object({
  clientId: z.string().check(z.minLength(1)),
  clientSecret: z.string().check(z.minLength(1)),
  merchantId: z.string().check(z.minLength(1)),
  notificationSecret: z.optional(z.string().check(z.minLength(16), z.maxLength(256), z.regex(/^[A-Za-z0-9._~-]+$/, 'must be URL-safe'))),
});

export type OpttySecret = z.infer<typeof opttySecretSchema>;

/** `POST /token` (client_credentials): `{access_token, expires_in, token_type, scope}`, 24 h by default. */
export const tokenResponseSchema = z.object({
  access_token: z.string().check(z.minLength(1), z.maxLength(8192)),
  expires_in: z.number().check(z.positive()),
  token_type: z.optional(z.string()),
  scope: z.optional(z.string()),
});

/** `POST /orders/{orderReference}/refund` success (docs: Refund Order). */
export const refundResponseSchema = z.object({
  refundReference: z.optional(z.nullable(z.string())),
  bnplProvider: z.optional(z.nullable(z.string())),
  refundedAmount: z.optional(z.nullable(z.number())),
  refundStatus: z.string().check(z.minLength(1), z.maxLength(64)),
  refundDate: z.optional(z.nullable(z.string())),
  bnplRefundId: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
});

/** Every documented error: `{statusCode, message, error}` (`error` absent on 401/404/500). */
export const errorResponseSchema = z.object({
  statusCode: z.optional(z.number()),
  message: z.optional(z.union([z.string(), z.array(z.string())])),
  error: z.optional(z.string()),
});

const amountValue = z.union([z.number(), z.string()]);

/** One entry of `refunds[]` in the transaction details. */
export const detailsRefundSchema = z.object({
  refundId: z.optional(z.nullable(z.union([z.string(), z.number()]))),
  amount: z.optional(z.nullable(amountValue)),
  currency: z.optional(z.nullable(z.string())),
  status: z.string().check(z.minLength(1), z.maxLength(64)),
  createdAt: z.optional(z.nullable(z.string())),
  refundReason: z.optional(z.nullable(z.string())),
  refundFailureReason: z.optional(z.nullable(z.string())),
});

export type DetailsRefund = z.infer<typeof detailsRefundSchema>;

/** `POST /orders/{merchantReference}/details?merchantId=` (docs: Transaction Details); only `refunds` is read. */
export const transactionDetailsSchema = z.object({
  merchantReference: z.optional(z.nullable(z.string())),
  status: z.optional(z.nullable(z.string())),
  refunds: z.optional(z.nullable(z.array(detailsRefundSchema))),
});

/**
 * An Optty notification (docs: Notification Handling). It carries no verifiable signature
 * (UNCONFIRMED), so it is only a hint: the inbound route stores it and re-fetches the
 * transaction details before acting. Only `event`, `status` and `transactionId` are documented;
 * the references that name the order are UNCONFIRMED and optional, and other fields are kept.
 */
export const opttyNotificationSchema = z.looseObject({
  event: z.string().check(z.minLength(1), z.maxLength(64)),
  status: z.string().check(z.minLength(1), z.maxLength(64)),
  transactionId: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
  merchantReference: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
  orderReference: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
  refundReference: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
});

export type OpttyNotification = z.infer<typeof opttyNotificationSchema>;

export function isRefundCallback(notification: Pick<OpttyNotification, 'event'>): boolean {
  return notification.event === 'REFUND_CALLBACK';
}

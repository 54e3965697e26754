import * as z from 'zod/mini';

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
  .check(z.refine((secret) => secret.callbackKeys[secret.callbackKeyId] !== undefined, 'callbackKeyId must name one of callbackKeys'));

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

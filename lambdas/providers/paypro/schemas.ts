import * as z from 'zod/mini';
import '../../commons/validation';

/**
 * Secret `paypro` (JSON). `vendorAccountId`/`apiSecretKey` authenticate DoRefund (they travel in
 * the request body); `ipnSecretKey` keys the IPN `HASH` and `ipnValidationKey` the IPN
 * `SIGNATURE` (Store settings → General settings → Integration).
 */
export const payProSecretSchema = z.object({
  vendorAccountId: z.int().check(z.positive()),
  apiSecretKey: z.string().check(z.minLength(1)),
  ipnSecretKey: z.string().check(z.minLength(1)),
  ipnValidationKey: z.string().check(z.minLength(1)),
});

export type PayProSecret = z.infer<typeof payProSecretSchema>;

const refundResultSchema = z.object({
  orderId: z.union([z.int(), z.string().check(z.regex(/^\d+$/))]),
  isRefundSuccessful: z.boolean(),
  refundNotice: z.optional(z.nullable(z.string())),
});

/**
 * The DoRefund answer (docs/providers.md §5). Deliberately not kept: `request` (it echoes our `apiSecretKey`)
 * and each result's `customerEmail`; `z.object` drops unknown keys, so neither survives parsing.
 * The reference calls `response` an object while its sample shows an array: both are accepted.
 */
export const doRefundResponseSchema = z.object({
  response: z.optional(z.nullable(z.union([z.array(refundResultSchema), refundResultSchema]))),
  errors: z.optional(
    z.nullable(
      z.array(
        z.object({
          propertyWithError: z.optional(z.nullable(z.string())),
          propertyErrorMessages: z.optional(z.nullable(z.array(z.string()))),
        }),
      ),
    ),
  ),
  isSuccess: z.optional(z.nullable(z.boolean())),
});

export type DoRefundResponse = z.infer<typeof doRefundResponseSchema>;
export type DoRefundResult = z.infer<typeof refundResultSchema>;

import * as z from 'zod/mini';
import '../../commons/validation';
import { RMA_STATUSES } from './statuses';

/**
 * Secret `refundid` (JSON). `bearerToken` is the token we chose and gave Refundid for its calls to
 * us (`Authorization: Bearer …`); `apiKey` is Refundid's key for its own API
 * (`x-refundid-api-key`), which refund-relay does not call yet.
 */
export const refundidSecretSchema = z.object({
  bearerToken: z.string().check(z.minLength(32, 'must be at least 32 characters'), z.maxLength(1024), z.regex(/^[\x21-\x7E]+$/, 'must be printable ASCII')),
  apiKey: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
});

export type RefundidSecret = z.infer<typeof refundidSecretSchema>;

/** Refundid's string limits (initial redirect docs): up to 255 characters, ASCII, no spaces. */
const refundidText = z.string().check(z.regex(/^[\x21-\x7E]{1,255}$/, 'must be 1 to 255 printable ASCII characters without spaces'));

// eslint-disable-next-line no-control-regex -- refusing control characters is the point of this pattern
const email = z.string().check(z.maxLength(320), z.regex(/^[^\s@\u0000-\u001f\u007f]+@[^\s@\u0000-\u001f\u007f]+$/, 'must be an e-mail address'));

/**
 * `GET /refundid/order`: Refundid passes on what its portal was given in the redirect (`shop`,
 * `email`, `order_number`, and the optional `merchant_order_ref`, `key`, `merchant_rma_ref`).
 * Which of them reach us is UNCONFIRMED, so parameters beyond these are tolerated and ignored.
 */
export const orderQuerySchema = z.object({
  order_number: refundidText,
  email,
  merchant_order_ref: z.optional(refundidText),
  key: z.optional(refundidText),
  shop: z.optional(refundidText),
  merchant_rma_ref: z.optional(refundidText),
});

export const ORDER_QUERY_PARAMETERS = Object.keys(orderQuerySchema.shape) as (keyof typeof orderQuerySchema.shape)[];

export type OrderQuery = z.infer<typeof orderQuerySchema>;

/**
 * `RapiAmount`. Its fields are UNCONFIRMED (the models page names the type only): we answer
 * `{amount: "59.90", currency: "AUD"}`, a decimal string in major units.
 */
export interface RapiAmount {
  readonly amount: string;
  readonly currency: string;
}

/**
 * An id Refundid echoes back to us, read as text: a string, or a whole number (Refundid's field types
 * are UNCONFIRMED, docs/providers.md §2, and our line ids and Ap21's are digits it may type as numbers).
 */
const refundidRef = z.pipe(
  z.union([refundidText, z.int().check(z.gte(0), z.lte(Number.MAX_SAFE_INTEGER))]),
  z.transform((value) => String(value)),
);

/**
 * One line of an RMA push, as `RapiReturn` documents its lines (`merchant_order_ref`,
 * `line_item_ref`, `quantity`, `price`, `compensation_method`, …). The refund's amount is priced
 * from our ledger, never from the push; a line compensated by `exchange` or `credit` adds no money
 * to it (docs/design.md §2.8). Another method, or none, is a refund. `price` and the other fields
 * we never read are not validated: their shape is UNCONFIRMED (docs/providers.md §2), and a push
 * refused for one of them would be money Refundid paid that the ledger never hears of. They are
 * kept in the stored raw push.
 */
const rmaLineSchema = z.looseObject({
  merchant_order_ref: refundidRef,
  line_item_ref: refundidRef,
  quantity: z.int().check(z.gte(1), z.lte(100_000)),
  compensation_method: z.optional(z.nullable(z.string().check(z.maxLength(50)))),
});

/**
 * `POST /refundid/refund`: Refundid's RMA status push (`refunding`, then `refundid` or `failed`).
 * Only `refundid_id`, `merchant_rma_ref` and `status` are documented (`RapiRefundidOrder`); the
 * line items are assumed to be shaped like `RapiReturn`'s (UNCONFIRMED). Refundid may add fields,
 * so unknown ones are tolerated and kept in the stored raw push.
 */
export const rmaPushSchema = z.looseObject({
  refundid_id: refundidRef,
  // An empty string is an absent reference, as null is.
  merchant_rma_ref: z.optional(
    z.pipe(
      z.nullable(z.union([z.literal(''), refundidRef])),
      z.transform((value) => (value === '' ? null : value)),
    ),
  ),
  status: z.enum(RMA_STATUSES),
  // A return of more lines than this is not a customer's; it also keeps the one conditional write
  // that reserves them within DynamoDB's 4 KB expression limit.
  line_items: z.optional(z.nullable(z.array(rmaLineSchema).check(z.minLength(1), z.maxLength(30)))),
});

export type RmaPush = z.infer<typeof rmaPushSchema>;

/** `RapiOrderLineItem`, the fields we fill (the model has more, all optional). */
export interface RapiOrderLineItem {
  readonly line_item_ref: string;
  readonly title: string;
  readonly price: RapiAmount;
  readonly quantity: number;
  readonly returnable_quantity: number;
  readonly product_ref: string;
  readonly variant_ref?: string;
  readonly sku?: string;
  readonly non_returnable_reasons: readonly string[];
}

/** `RapiOrder`: the answer to Refundid's order fetch. */
export interface RapiOrder {
  readonly merchant_order_ref: string;
  readonly order_number: string;
  readonly email: string;
  readonly purchased_at: string;
  readonly payment_method: string;
  readonly is_giftcard_used: boolean;
  readonly line_items: readonly RapiOrderLineItem[];
}

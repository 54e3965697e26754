import type { RefundEvent } from '../../domain/refund';

/** The statuses of an RMA push (docs/providers.md §2): `refunding` first, then `refundid` or `failed`. */
export const RMA_STATUSES = ['refunding', 'refundid', 'failed'] as const;
export type RmaStatus = (typeof RMA_STATUSES)[number];

/** The event a final status applies to the refund holding the RMA's units. */
export const RMA_OUTCOME_EVENTS = {
  refundid: 'refundid_refunded',
  failed: 'refundid_failed',
} as const satisfies Record<Exclude<RmaStatus, 'refunding'>, RefundEvent>;

const REFUNDID_REFUND_PREFIX = 'rfd-';

/**
 * Our refund id for a Refundid RMA: `rfd-<merchant_rma_ref>` when the RMA carries one (a
 * merchant-initiated RMA, whose reference is ours), else `rfd-<refundid_id>`. It is fixed when the
 * RMA is first seen and recorded against `refundid_id`, so later pushes find the same refund even
 * if they carry `merchant_rma_ref` differently. A `merchant_rma_ref` another RMA of the order
 * already holds (a customer starting again from the same link after a failed RMA) gives way to
 * `refundidOwnRefundId`.
 */
export function refundidRefundId(rma: { readonly refundid_id: string; readonly merchant_rma_ref?: string | null }): string {
  return `${REFUNDID_REFUND_PREFIX}${rma.merchant_rma_ref ?? rma.refundid_id}`;
}

/** The refund id no other RMA can hold: `rfd-<refundid_id>`. */
export function refundidOwnRefundId(rma: { readonly refundid_id: string }): string {
  return `${REFUNDID_REFUND_PREFIX}${rma.refundid_id}`;
}

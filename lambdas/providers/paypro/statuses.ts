import { maskText } from '../../commons/redact';
import type { ReversalOutcome } from '../reversal';
import type { DoRefundResponse, DoRefundResult } from './schemas';

export function refundResults(answer: DoRefundResponse): readonly DoRefundResult[] {
  if (!answer.response) return [];
  return Array.isArray(answer.response) ? answer.response : [answer.response];
}

/**
 * DoRefund answer → our outcome for one order. PayPro has no idempotency key, so "already
 * refunded" is the answer a retry after a lost first answer gets: it is `unknown`, never a failure
 * (a failure could be re-routed and pay twice) and never a success (the refund may have been made
 * elsewhere, e.g. in the PayPro control panel). An operator or the OrderRefunded IPN settles it.
 */
export function doRefundOutcome(orderId: number, answer: DoRefundResponse, alreadyRefunded: RegExp): ReversalOutcome {
  const errors = answer.errors ?? [];
  if (errors.length > 0) {
    const described = errors.map((error) => `${error.propertyWithError ?? 'request'}: ${(error.propertyErrorMessages ?? []).join(', ') || 'invalid'}`);
    return { kind: 'failed', retryable: false, detail: maskText(`PayPro refused DoRefund: ${described.join('; ')}`) };
  }
  const ours = refundResults(answer).find((result) => String(result.orderId) === String(orderId));
  if (!ours) {
    return { kind: 'unknown', detail: `PayPro answered DoRefund without a result for order ${orderId} (isSuccess ${String(answer.isSuccess)})` };
  }
  const providerRef = String(orderId);
  if (ours.isRefundSuccessful) return { kind: 'succeeded', providerRef, detail: `PayPro refunded order ${orderId}` };
  const notice = maskText(ours.refundNotice ?? '');
  if (notice && alreadyRefunded.test(notice)) {
    return {
      kind: 'unknown',
      detail: `PayPro says order ${orderId} was refunded before ("${notice}"): our own earlier attempt whose answer was lost, or a refund made elsewhere; an operator or the OrderRefunded IPN must settle it`,
    };
  }
  return { kind: 'failed', retryable: false, providerRef, detail: `PayPro refused to refund order ${orderId}: ${notice || 'no refundNotice given'}` };
}

import { maskText } from '../../commons/redact';
import type { ReversalOutcome } from '../reversal';

/**
 * Optty refund statuses → our outcome. SUCCESSFUL and PENDING are documented; DECLINED appears in
 * notifications. The other refusal words are the usual BNPL ones and end the refund for good. A
 * status we do not recognise is a retryable failure: resubmitting reuses the same
 * refundReference, so it can only replay the refund, and bounded retries end in manual review.
 */
const PERMANENT_FAILURE_STATUSES: ReadonlySet<string> = new Set(['DECLINED', 'FAILED', 'REJECTED', 'CANCELLED', 'CANCELED', 'ERROR', 'EXPIRED']);

export function refundStatusOutcome(status: string, providerRef: string | undefined, subject: string, failureReason?: string | null): ReversalOutcome {
  const normalised = status.trim().toUpperCase();
  const ref = providerRef ? { providerRef } : {};
  if (normalised === 'SUCCESSFUL') return { kind: 'succeeded', ...ref, detail: `${subject}: SUCCESSFUL` };
  if (normalised === 'PENDING') return { kind: 'pending', ...ref, detail: `${subject}: PENDING` };
  const reason = failureReason ? ` (${maskText(failureReason)})` : '';
  if (PERMANENT_FAILURE_STATUSES.has(normalised)) return { kind: 'failed', retryable: false, ...ref, detail: `${subject}: ${normalised}${reason}` };
  return { kind: 'failed', retryable: true, ...ref, detail: `${subject}: unrecognised status ${maskText(status).slice(0, 64)}${reason}` };
}

import { maskText } from '../../commons/redact';
import { isRetryableStatus, type ProviderCallError } from '../outbound';
import type { ReversalOutcome } from '../reversal';
import { AddonPaymentsResponseError, lastOperation, parseAddonPaymentsResponse, type AddonPaymentsOperation } from './schemas';

/**
 * EPG answers → our outcomes. The facts (docs/providers.md §4) give the status values and that the last
 * operation decides; they give no respCode list for rebates, so codes and messages are reported in
 * `detail` for people, never used to decide.
 */
const SUCCEEDED = new Set(['SUCCESS']);
const PENDING = new Set(['PENDING', 'REDIRECTED']);
// UNCONFIRMED whether any ERROR/FAIL is transient. They are treated as final refusals: the seed
// says a merchantTransactionId "cannot be repeated", so retrying the same reference would not help,
// and a new reference risks paying twice. The refund goes to manual review instead.
const REFUSED = new Set(['ERROR', 'FAIL']);

/** HTTP statuses whose body is an EPG answer: 200, and 307 which the SDKs also accept. */
const ANSWER_STATUSES = new Set([200, 307]);

function snippet(text: string): string {
  const flat = maskText(text.replace(/\s+/g, ' ').trim());
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || '(empty body)';
}

function describeOperation(operation: AddonPaymentsOperation): string {
  const parts = [`EPG ${operation.operationType ?? 'operation'} ${operation.status}`];
  if (operation.message) parts.push(operation.message);
  const code = operation.respCode;
  if (code?.code || code?.message) parts.push(`respCode ${[code.code, code.message].filter(Boolean).join(' ')}`);
  if (operation.remainingAmount) parts.push(`remaining ${operation.remainingAmount}`);
  return parts.join('; ');
}

export function outcomeOfAnswer(body: string, merchantTransactionId: string): ReversalOutcome {
  let response;
  try {
    response = parseAddonPaymentsResponse(body);
  } catch (error) {
    if (!(error instanceof AddonPaymentsResponseError)) throw error;
    // EPG may have acted; the same merchantTransactionId makes trying again safe.
    return { kind: 'failed', retryable: true, detail: `unreadable EPG answer (${error.message}): ${snippet(body)}` };
  }
  const last = lastOperation(response);
  if (!last) {
    // No operation was created, so nothing was paid: a request-level refusal.
    if (response.status && REFUSED.has(response.status)) {
      return { kind: 'failed', retryable: false, detail: `EPG refused the rebate: ${response.message ?? response.status}` };
    }
    return { kind: 'unknown', detail: `EPG answered ${response.status ?? 'no status'} without any operation` };
  }
  if (last.merchantTransactionId !== undefined && last.merchantTransactionId !== merchantTransactionId) {
    return { kind: 'unknown', detail: `EPG answered about merchantTransactionId ${last.merchantTransactionId}, not ${merchantTransactionId}` };
  }
  const detail = describeOperation(last);
  const providerRef = last.transactionId !== undefined ? { providerRef: last.transactionId } : {};
  if (SUCCEEDED.has(last.status)) return { kind: 'succeeded', ...providerRef, detail };
  if (PENDING.has(last.status)) return { kind: 'pending', ...providerRef, detail };
  if (REFUSED.has(last.status)) return { kind: 'failed', retryable: false, ...providerRef, detail };
  return { kind: 'unknown', detail: `unrecognised status: ${detail}` };
}

export function outcomeOfHttpResponse(status: number, body: string, merchantTransactionId: string): ReversalOutcome {
  if (ANSWER_STATUSES.has(status)) return outcomeOfAnswer(body, merchantTransactionId);
  if (isRetryableStatus(status)) return { kind: 'failed', retryable: true, detail: `EPG HTTP ${status}: ${snippet(body)}` };
  // Other 3xx/4xx: the request itself was refused (credentials, encryption, fields) and would be again.
  return { kind: 'failed', retryable: false, detail: `EPG refused the request with HTTP ${status}: ${snippet(body)}` };
}

/**
 * No answer. If the request may have reached EPG the outcome is unknown — the refund stays
 * submitted, because money may have gone out — otherwise it simply failed and can be retried.
 */
export function outcomeOfCallError(error: ProviderCallError): ReversalOutcome {
  if (error.ambiguous) return { kind: 'unknown', detail: `${error.message} (EPG may have acted; ask again with the same merchantTransactionId)` };
  return { kind: 'failed', retryable: true, detail: `${error.message} (the request did not reach EPG)` };
}

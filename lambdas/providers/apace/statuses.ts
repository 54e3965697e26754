import { isRetryableStatus } from '../outbound';
import { apaceEmailErrorSchema, apaceErrorListSchema, apaceMessageSchema } from './schemas';

/**
 * What Apace's answers mean for us (docs/providers.md §1, code evidence). Offer statuses in Apace's
 * model: initialized → viewed → receiverVerified → pending → processed, or failed, canceled,
 * refundByVendor (the customer was told our normal refund already went out).
 */
/** Apace's duplicate guard counts an offer as live unless it failed, was processed or canceled (or expired). */
export const LIVE_OFFER_STATUSES = ['initialized', 'viewed', 'receiverVerified', 'pending', 'refundByVendor'] as const;
const LIVE: ReadonlySet<string> = new Set(LIVE_OFFER_STATUSES);
const UNCANCELLABLE_STATUSES: ReadonlySet<string> = new Set(['pending', 'processed', 'failed']);

export function blocksNewOffer(status: string): boolean {
  return LIVE.has(status);
}

/** Apace refuses to cancel once a payout is under way (pending), done (processed) or failed at its processor. */
export function cancelRefusedIn(status: string): boolean {
  return UNCANCELLABLE_STATUSES.has(status);
}

export type ApaceFailureCode =
  /** Apace refused the request's data (400/5001): the same request will fail again. */
  | 'invalid_request'
  /** Wrong key pair (401). Never retried: 3 failed auths lock our egress IP out for 5 minutes. */
  | 'unauthorized'
  /** 429: too many requests, or our IP is locked out after failed auths. */
  | 'throttled'
  /** 5xx (5010 "Server error" included): Apace is failing for now. */
  | 'provider_error'
  /** No answer: refused connection, reset or timeout. */
  | 'unreachable'
  /** Apace did not get an `allow_refund` answer from our verification URL during the create. */
  | 'verification_unanswered'
  /** A live offer that is not this refund's covers the same order items (Apace allows one). */
  | 'items_already_offered'
  /** Send Refund Offer Email on an offer without a customer e-mail (4012). */
  | 'no_customer_email'
  | 'not_found'
  /** A success status with a body we cannot read, or a status Apace does not document here. */
  | 'unexpected_response';

const RETRYABLE: Readonly<Record<ApaceFailureCode, boolean>> = {
  invalid_request: false,
  unauthorized: false,
  throttled: true,
  provider_error: true,
  unreachable: true,
  // Our own endpoint was down or slow while Apace asked; the next attempt may get through.
  verification_unanswered: true,
  // The other offer may be canceled or expire; the caller's retry budget decides when to stop.
  items_already_offered: true,
  no_customer_email: false,
  not_found: false,
  unexpected_response: false,
};

export interface ApaceFailure {
  readonly kind: 'failed';
  readonly retryable: boolean;
  readonly code: ApaceFailureCode;
  readonly reason: string;
}

export function apaceFailure(code: ApaceFailureCode, reason: string): ApaceFailure {
  return { kind: 'failed', retryable: RETRYABLE[code], code, reason };
}

const DUPLICATE = /already a refund request made to this product/i;
const VERIFICATION_UNANSWERED = /refund_verification\.url does not return the correct response/i;

/** The messages of a `{errors: [{error_code, error_message}]}` body, or none. */
function errorMessages(body: unknown): string[] {
  const list = apaceErrorListSchema.safeParse(body);
  if (list.success) return list.data.errors.map((error) => `${error.error_code}: ${error.error_message}`);
  const single = apaceEmailErrorSchema.safeParse(body);
  if (single.success) return [`${single.data.errors.error_code}: ${single.data.errors.error_message}`];
  const message = apaceMessageSchema.safeParse(body);
  return message.success ? [message.data.message] : [];
}

/** Apace's guard refused a second live offer for the same vendor, order and item (400/5001). */
export function isDuplicateRefusal(status: number, body: unknown): boolean {
  return status === 400 && errorMessages(body).some((message) => DUPLICATE.test(message));
}

/**
 * Maps an Apace answer that is not the documented success to a failure. Callers handle the answers
 * that mean something for their operation (duplicate, cancel refusal, 404) before asking this.
 */
export function classifyAnswer(operation: string, status: number, body: unknown): ApaceFailure {
  const messages = errorMessages(body);
  const detail = `Apace ${operation} answered ${status}${messages.length ? `: ${messages.join('; ')}` : ''}`;
  if (status === 401) return apaceFailure('unauthorized', detail);
  if (status === 429) return apaceFailure('throttled', detail);
  if (isRetryableStatus(status)) return apaceFailure('provider_error', detail);
  if (status === 404) return apaceFailure('not_found', detail);
  if (status === 400) {
    if (apaceEmailErrorSchema.safeParse(body).data?.errors.error_code === 4012) return apaceFailure('no_customer_email', detail);
    if (messages.some((message) => VERIFICATION_UNANSWERED.test(message))) return apaceFailure('verification_unanswered', detail);
    return apaceFailure('invalid_request', detail);
  }
  return apaceFailure('unexpected_response', detail);
}

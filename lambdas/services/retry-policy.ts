/**
 * How hard the dispatcher tries before a human looks. Delays grow exponentially with full jitter
 * (a random delay between 0 and the exponential cap) so retries from many refunds spread out.
 */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** How long a dispatcher owns a claimed call before the sweeper may take it over. */
  readonly leaseMs: number;
  /** How long to wait before asking a provider again about a pending refund. */
  readonly syncDelayMs: number;
}

export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * exponential);
}

export function later(nowMs: number, delayMs: number): string {
  return new Date(nowMs + delayMs).toISOString();
}

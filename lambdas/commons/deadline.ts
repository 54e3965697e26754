import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The time an invocation must have finished by, carried through its async calls (docs/design.md
 * §2.5). Lambda stops an invocation at its timeout, and API Gateway gives up on a request after
 * 29 s; work that runs past either is lost half-done. Inside `withDeadline`, every provider call
 * waits at most until the deadline (lambdas/providers/outbound.ts) and the dispatcher starts a
 * call only if it fits (services/dispatcher.ts). Outside one (the local runtime's loops, most
 * tests) there is no deadline.
 */
const current = new AsyncLocalStorage<number>();

/** Runs `work` with a deadline (epoch ms); a deadline already in force that is sooner still holds. */
export function withDeadline<T>(deadlineAt: number, work: () => Promise<T>): Promise<T> {
  const outer = current.getStore();
  return current.run(outer === undefined ? deadlineAt : Math.min(outer, deadlineAt), work);
}

/** Milliseconds left before the deadline in force; Infinity when there is none. */
export function remainingMs(now: number = Date.now()): number {
  const deadlineAt = current.getStore();
  return deadlineAt === undefined ? Number.POSITIVE_INFINITY : deadlineAt - now;
}

/**
 * The deadline of a Lambda invocation: its own timeout, less time to return and log the outcome.
 * A caller without Lambda's context (a script) has none.
 */
export function lambdaDeadline(context: Partial<{ getRemainingTimeInMillis(): number }> | undefined, reserveMs: number, now: number = Date.now()): number {
  const remaining = context?.getRemainingTimeInMillis?.();
  return remaining === undefined ? Number.POSITIVE_INFINITY : now + remaining - reserveMs;
}

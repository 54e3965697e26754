import { loadOnce } from '../commons/lazy';
import type { Money } from '../domain/money';
import { own, type Order, type PaymentLedger, type PaymentProvider } from '../domain/order';
import type { Refund } from '../domain/refund';

/**
 * What every card-reversal connector (EPG, PayPro, Optty) offers the dispatcher. Connectors never
 * throw for provider answers or transport failures: they return an outcome. They throw only for
 * programming or configuration errors (a missing base URL or secret).
 */
export interface ReversalRequest {
  /** Our refund id: the idempotency reference at the provider (EPG merchantTransactionId, Optty refundReference). */
  readonly refundId: string;
  readonly orderId: string;
  readonly amount: Money;
  /** The original payment: provider, its transaction id (Ap21 `Stan`), reference. */
  readonly payment: PaymentLedger;
  readonly description: string;
  /** What an earlier submit returned as `providerRef` (kept in the refund's refs), when known. */
  readonly providerRef?: string;
  /**
   * False when an earlier attempt may have reached the provider: a refusal now may only mean the
   * provider will not take our reference twice, so it is not proof that nothing was paid.
   */
  readonly firstAttempt?: boolean;
}

export type ReversalOutcome =
  /** The provider has sent the money back (or will, irrevocably). */
  | { readonly kind: 'succeeded'; readonly providerRef?: string; readonly detail: string }
  /** Accepted; the final answer comes later (status sync or notification). */
  | { readonly kind: 'pending'; readonly providerRef?: string; readonly detail: string }
  /** Refused or failed. `retryable` failures are tried again with the same reference. */
  | { readonly kind: 'failed'; readonly retryable: boolean; readonly detail: string; readonly providerRef?: string }
  /** The provider cannot say (no status API, or the transaction is not found yet). */
  | { readonly kind: 'unknown'; readonly detail: string };

export interface ReversalConnector {
  readonly provider: PaymentProvider;
  submit(request: ReversalRequest): Promise<ReversalOutcome>;
  /** The refund's current state at the provider, for sync of pending or ambiguous submissions. */
  status(request: ReversalRequest): Promise<ReversalOutcome>;
}

/** A refund handed to the connector of another provider: a routing bug, never a provider answer. */
export class WrongConnectorError extends Error {
  override readonly name = 'WrongConnectorError';
}

export function assertConnectorFor(provider: PaymentProvider, request: ReversalRequest): void {
  if (request.payment.provider !== provider) {
    throw new WrongConnectorError(`refund ${request.refundId} is for a ${request.payment.provider} payment, not ${provider}`);
  }
}

/**
 * A connector whose code is loaded by `load` when it is first asked for something (a failed load is
 * tried again next time): the Lambda bundle keeps each provider's connector in a chunk of its own.
 */
export function loadedOnFirstUse(provider: PaymentProvider, load: () => Promise<ReversalConnector>): ReversalConnector {
  const connector = loadOnce(load);
  return {
    provider,
    submit: async (request) => (await connector()).submit(request),
    status: async (request) => (await connector()).status(request),
  };
}

/** What a connector is asked to reverse for `refund` of `order`: the dispatcher's submit and follow-up, a notification's check, the operators' reconcile. */
export function reversalRequest(order: Order, refund: Refund): ReversalRequest {
  const payment = own(order.payments, refund.paymentId);
  if (!payment) throw new Error(`order ${order.orderId} has no payment ${refund.paymentId}`);
  return {
    refundId: refund.id,
    orderId: order.orderId,
    amount: refund.amount,
    payment,
    description: `Refund ${refund.id} of order ${order.orderId}`,
    firstAttempt: refund.attempts <= 1,
    // What the provider called it when it first answered: a follow-up looks for exactly that refund.
    ...(refund.refs.providerRef && { providerRef: refund.refs.providerRef }),
  };
}

import { maskText } from '../../commons/redact';
import type { SecretReader } from '../../commons/secrets';
import { InvalidMoneyError } from '../../domain/errors';
import { formatDecimal, parseDecimal, type Money } from '../../domain/money';
import type { PaymentLedger } from '../../domain/order';
import { callProvider, isRetryableStatus, ProviderCallError, type OutboundResponse } from '../outbound';
import { assertConnectorFor, type ReversalConnector, type ReversalOutcome, type ReversalRequest } from '../reversal';
import type { OpttyConfig } from './config';
import { errorResponseSchema, refundResponseSchema, transactionDetailsSchema, type DetailsRefund, type OpttySecret } from './schemas';
import { refundStatusOutcome } from './statuses';
import { OpttyAuthError, OpttyTokenSource } from './token';

/**
 * The Optty order a payment belongs to. Optty addresses orders by the merchant's order reference
 * given at order creation; Ap21 carries it in the payment's `Reference`. When a payment has none,
 * its transaction id (`Stan`) is the only other id the gateway gave, so it is used instead.
 */
export function opttyOrderReference(payment: Pick<PaymentLedger, 'reference' | 'transactionId'>): string | undefined {
  const reference = (payment.reference ?? payment.transactionId)?.trim();
  return reference ? reference : undefined;
}

/**
 * The refund amount as the JSON number Optty wants (major units), built from the exact decimal
 * string of the minor units. JSON writes the shortest decimal that reads back as the same double,
 * which is exact up to 15 significant digits; the round trip is checked rather than assumed.
 */
export function opttyAmount(amount: Money): number | undefined {
  const value = Number(formatDecimal(amount));
  try {
    return parseDecimal(String(value), amount.currency).minor === amount.minor ? value : undefined;
  } catch (error) {
    if (error instanceof InvalidMoneyError) return undefined;
    throw error;
  }
}

function minorOf(amount: number | string | null | undefined, currency: string): number | undefined {
  if (amount === null || amount === undefined) return undefined;
  try {
    return parseDecimal(String(amount), currency).minor;
  } catch (error) {
    if (error instanceof InvalidMoneyError) return undefined;
    throw error;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorMessage(response: OutboundResponse): string {
  const parsed = errorResponseSchema.safeParse(parseJson(response.text));
  const message = parsed.success ? parsed.data.message : undefined;
  const text = Array.isArray(message) ? message.join('; ') : message;
  return maskText(text?.slice(0, 500) || 'no message');
}

const isSuccess = (status: number) => status >= 200 && status < 300;

type AuthorizedCall =
  | { readonly kind: 'answer'; readonly response: OutboundResponse; readonly token: string }
  | { readonly kind: 'unreachable'; readonly error: ProviderCallError }
  | { readonly kind: 'no_token'; readonly error: OpttyAuthError };

export class OpttyConnector implements ReversalConnector {
  readonly provider = 'optty' as const;
  private readonly tokens: OpttyTokenSource;

  constructor(
    private readonly secrets: SecretReader<OpttySecret>,
    private readonly config: OpttyConfig,
    now: () => number = Date.now,
  ) {
    this.tokens = new OpttyTokenSource(secrets, config, now);
  }

  async submit(request: ReversalRequest): Promise<ReversalOutcome> {
    assertConnectorFor(this.provider, request);
    const orderReference = opttyOrderReference(request.payment);
    if (!orderReference)
      return { kind: 'failed', retryable: false, detail: 'the payment has neither a reference nor a transaction id to name the Optty order' };
    const amount = opttyAmount(request.amount);
    if (amount === undefined)
      return { kind: 'failed', retryable: false, detail: `${formatDecimal(request.amount)} ${request.amount.currency} cannot be sent as an exact JSON number` };

    const call = await this.post(`/orders/${encodeURIComponent(orderReference)}/refund`, {
      refundReference: request.refundId,
      refundAmount: { amount, currency: request.amount.currency },
      refundDescription: request.description.trim() || `Refund ${request.refundId}`,
    });
    if (call.kind === 'unreachable') {
      // If Optty may have accepted it the refund stays submitted (unknown); asking again reuses the refundReference.
      if (call.error.ambiguous) return { kind: 'unknown', detail: `${call.error.message}; Optty may have accepted refundReference ${request.refundId}` };
      return { kind: 'failed', retryable: true, detail: call.error.message };
    }
    if (call.kind === 'no_token') return { kind: 'failed', retryable: call.error.retryable, detail: call.error.message };
    return this.refundAnswer(call.response, request.refundId);
  }

  async status(request: ReversalRequest): Promise<ReversalOutcome> {
    assertConnectorFor(this.provider, request);
    const orderReference = opttyOrderReference(request.payment);
    if (!orderReference) return { kind: 'unknown', detail: 'the payment names no Optty order' };
    const { merchantId } = await this.secrets.get();
    const call = await this.post(`/orders/${encodeURIComponent(orderReference)}/details?merchantId=${encodeURIComponent(merchantId)}`, {});
    if (call.kind !== 'answer') return { kind: 'unknown', detail: `could not ask Optty: ${call.error.message}` };
    const { response } = call;
    if (!isSuccess(response.status))
      return { kind: 'unknown', detail: `Optty answered HTTP ${response.status} to the details request: ${errorMessage(response)}` };
    const details = transactionDetailsSchema.safeParse(parseJson(response.text));
    if (!details.success) return { kind: 'unknown', detail: 'Optty answered the details request with an unreadable body' };
    return this.findRefund(details.data.refunds ?? [], request);
  }

  /**
   * Our refund among the order's refunds. By the id Optty gave at submit when we have it (never
   * falling back, so another refund cannot be mistaken for ours); otherwise by our refund id, in
   * case Optty lists the refundReference as refundId; an amount match alone is never taken as ours. Whether `refundId` is the submit's `bnplRefundId` and
   * what a refund made outside refund-relay looks like are UNCONFIRMED.
   */
  private findRefund(refunds: readonly DetailsRefund[], request: ReversalRequest): ReversalOutcome {
    const subject = `Optty refund ${request.refundId}`;
    const byId = (id: string) => refunds.find((refund) => refund.refundId !== null && refund.refundId !== undefined && String(refund.refundId) === id);
    const describe = (refund: DetailsRefund, how: string) =>
      refundStatusOutcome(
        refund.status,
        refund.refundId === null || refund.refundId === undefined ? undefined : String(refund.refundId),
        `${subject} (${how})`,
        refund.refundFailureReason,
      );

    if (request.providerRef) {
      const found = byId(request.providerRef);
      return found
        ? describe(found, `found by id ${request.providerRef}`)
        : { kind: 'unknown', detail: `${subject}: Optty lists no refund ${request.providerRef} yet` };
    }
    const byReference = byId(request.refundId);
    if (byReference) return describe(byReference, 'found by refund id');
    const { minor, currency } = request.amount;
    const sameAmount = refunds.filter((refund) => refund.currency?.toUpperCase() === currency && minorOf(refund.amount, currency) === minor);
    const amount = `${formatDecimal(request.amount)} ${currency}`;
    // An amount alone proves nothing: it may be another refund of the same order. Our refund is then
    // submitted again under the same refundReference, which Optty does not pay twice.
    if (sameAmount.length === 1) return { kind: 'unknown', detail: `${subject}: one refund of ${amount} on the order, but nothing ties it to ours` };
    if (sameAmount.length > 1)
      return { kind: 'unknown', detail: `${subject}: ${sameAmount.length} refunds of ${amount} on the order, cannot tell which is ours` };
    return { kind: 'unknown', detail: `${subject}: Optty lists no refund of ${amount} on the order` };
  }

  private refundAnswer(response: OutboundResponse, refundId: string): ReversalOutcome {
    const subject = `Optty refund ${refundId}`;
    if (isSuccess(response.status)) {
      const parsed = refundResponseSchema.safeParse(parseJson(response.text));
      if (!parsed.success)
        return { kind: 'unknown', detail: `${subject}: Optty answered HTTP ${response.status} with an unreadable body; it may have accepted the refund` };
      return refundStatusOutcome(parsed.data.refundStatus, parsed.data.bnplRefundId ?? undefined, subject);
    }
    if (response.status === 401)
      return { kind: 'failed', retryable: false, detail: `${subject}: Optty refused a freshly issued token (HTTP 401); check the client credentials` };
    const message = errorMessage(response);
    if (isRetryableStatus(response.status))
      return { kind: 'failed', retryable: true, detail: `${subject}: Optty answered HTTP ${response.status}: ${message}` };
    if ((response.status === 400 || response.status === 409) && this.config.duplicateReference.test(message)) {
      return { kind: 'unknown', detail: `${subject}: Optty says the refundReference was used before (${message}); status sync finds the first refund` };
    }
    if (response.status === 404) return { kind: 'failed', retryable: false, detail: `${subject}: Optty does not know the order (HTTP 404: ${message})` };
    return { kind: 'failed', retryable: false, detail: `${subject}: Optty refused it (HTTP ${response.status}: ${message})` };
  }

  /** An authorised POST; after a 401 the token is dropped, refreshed once and the call retried once. */
  private async post(path: string, body: unknown): Promise<AuthorizedCall> {
    const first = await this.postOnce(path, body);
    if (first.kind !== 'answer' || first.response.status !== 401) return first;
    this.tokens.invalidate(first.token);
    return this.postOnce(path, body);
  }

  private async postOnce(path: string, body: unknown): Promise<AuthorizedCall> {
    let token: string;
    try {
      token = await this.tokens.token();
    } catch (error) {
      if (error instanceof OpttyAuthError) return { kind: 'no_token', error };
      throw error;
    }
    try {
      const response = await callProvider('optty', {
        method: 'POST',
        url: `${this.config.apiUrl}${path}`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        timeoutMs: this.config.timeoutMs,
      });
      return { kind: 'answer', response, token };
    } catch (error) {
      if (error instanceof ProviderCallError) return { kind: 'unreachable', error };
      throw error;
    }
  }
}

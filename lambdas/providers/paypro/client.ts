import { logger } from '../../commons/logger';
import type { SecretReader } from '../../commons/secrets';
import { formatDecimal, type Money } from '../../domain/money';
import type { PaymentLedger } from '../../domain/order';
import { callProvider, isRetryableStatus, ProviderCallError } from '../outbound';
import { assertConnectorFor, type ReversalConnector, type ReversalOutcome, type ReversalRequest } from '../reversal';
import type { PayProConnectorConfig } from './config';
import { doRefundResponseSchema, type PayProSecret } from './schemas';
import { doRefundOutcome, refundResults } from './statuses';

/**
 * Everything DoRefund is ever sent. There is no `emailAddresses` field on purpose: given one,
 * PayPro refunds every order of that customer whatever `orderIds` says (docs/providers.md §5, docs/design.md §2.3).
 */
export interface DoRefundRequestBody {
  readonly orderIds: readonly [number];
  readonly refundReason: string;
  readonly vendorAccountId: number;
  readonly apiSecretKey: string;
}

const ORDER_ID = /^[1-9]\d{0,14}$/;
const MAX_REASON_DESCRIPTION = 200;

/** The PayPro order id is the payment's transaction id; only a positive integer can be one. */
export function payProOrderId(payment: Pick<PaymentLedger, 'transactionId'>): number | undefined {
  const text = payment.transactionId?.trim();
  return text && ORDER_ID.test(text) ? Number(text) : undefined;
}

/**
 * DoRefund has no amount: it refunds whole orders. PayPro's partial-refund parameters are
 * UNCONFIRMED, so a refund of less than the captured amount is never sent; an operator makes it.
 */
export function wholeOrderProblem(amount: Money, payment: Pick<PaymentLedger, 'capturedMinor'>): string | undefined {
  const captured = formatDecimal({ minor: payment.capturedMinor, currency: amount.currency });
  if (amount.minor < payment.capturedMinor) {
    return `a partial PayPro refund (${formatDecimal(amount)} of ${captured} ${amount.currency}) needs an operator: DoRefund refunds whole orders only`;
  }
  if (amount.minor > payment.capturedMinor) {
    return `refund of ${formatDecimal(amount)} ${amount.currency} exceeds the ${captured} ${amount.currency} PayPro captured`;
  }
  return undefined;
}

/**
 * PayPro echoes the reason as the IPN's ACTION_REASON: our refund id in it ties the IPN back to us
 * (read back by `ipn.refundIdFromReason`; change both together).
 */
export function refundReason(request: Pick<ReversalRequest, 'refundId' | 'description'>): string {
  const description = request.description.trim().slice(0, MAX_REASON_DESCRIPTION) || 'Customer return';
  return `${description} (refund ${request.refundId})`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class PayProConnector implements ReversalConnector {
  readonly provider = 'paypro' as const;

  constructor(
    private readonly secrets: SecretReader<PayProSecret>,
    private readonly config: PayProConnectorConfig,
  ) {}

  async submit(request: ReversalRequest): Promise<ReversalOutcome> {
    assertConnectorFor(this.provider, request);
    const orderId = payProOrderId(request.payment);
    if (orderId === undefined) {
      return { kind: 'failed', retryable: false, detail: 'the payment has no PayPro order id: its transaction id must be a positive integer' };
    }
    const problem = wholeOrderProblem(request.amount, request.payment);
    if (problem) return { kind: 'failed', retryable: false, detail: problem };

    const secret = await this.secrets.get();
    const body: DoRefundRequestBody = {
      orderIds: [orderId],
      refundReason: refundReason(request),
      vendorAccountId: secret.vendorAccountId,
      apiSecretKey: secret.apiSecretKey,
    };
    let response;
    try {
      response = await callProvider('paypro', {
        method: 'POST',
        url: `${this.config.apiUrl}/Orders/DoRefund`,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        timeoutMs: this.config.timeoutMs,
      });
    } catch (error) {
      if (!(error instanceof ProviderCallError)) throw error;
      // PayPro may have refunded the order: unknown keeps the refund submitted (a retry hears
      // "already refunded" and the IPN settles it); nothing sent is a plain retryable failure.
      if (error.ambiguous) return { kind: 'unknown', detail: `${error.message}; PayPro may have refunded the order` };
      return { kind: 'failed', retryable: true, detail: error.message };
    }
    if (isRetryableStatus(response.status)) return { kind: 'failed', retryable: true, detail: `PayPro answered HTTP ${response.status}` };

    const parsed = doRefundResponseSchema.safeParse(parseJson(response.text));
    if (!parsed.success) {
      if (response.status >= 200 && response.status < 300) {
        return { kind: 'unknown', detail: `PayPro answered HTTP ${response.status} with an unreadable body; it may have refunded order ${orderId}` };
      }
      return { kind: 'failed', retryable: false, detail: `PayPro answered HTTP ${response.status} with an unreadable body` };
    }
    const others = refundResults(parsed.data).filter((result) => String(result.orderId) !== String(orderId));
    if (others.length > 0) {
      logger.error('PayPro answered for orders we did not ask to refund', {
        refundId: request.refundId,
        orderId,
        otherOrderIds: others.map((result) => String(result.orderId)),
      });
    }
    return doRefundOutcome(orderId, parsed.data, this.config.alreadyRefunded);
  }

  /** PayPro documents no refund status API: the OrderRefunded IPN or an operator settles a refund. */
  async status(request: ReversalRequest): Promise<ReversalOutcome> {
    assertConnectorFor(this.provider, request);
    return {
      kind: 'unknown',
      detail: 'PayPro has no documented refund status API; the OrderRefunded IPN (type 2) or an operator settles the refund',
    };
  }
}

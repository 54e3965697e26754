import { randomBytes } from 'node:crypto';
import { logger } from '../../commons/logger';
import type { SecretReader } from '../../commons/secrets';
import { callProvider, ProviderCallError } from '../outbound';
import type { ReversalConnector, ReversalOutcome, ReversalRequest } from '../reversal';
import type { AddonPaymentsConfig } from './config';
import { encryptRebate } from './crypto';
import type { AddonPaymentsSecret } from './schemas';
import { outcomeOfCallError, outcomeOfHttpResponse } from './statuses';

export const REBATE_PATH = '/EPGCheckout/rest/online/rebate';
/** 3, 4 and 5 are accepted; 5 is the recommended one (docs/providers.md §4). */
export const EPG_API_VERSION = '5';

const PROVIDER = 'addon_payments';
/** Seed 002: Latin-1 (ISO-8859-1), at most 45 characters. Control characters are refused too. */
const MERCHANT_TRANSACTION_ID = /^[\x20-\x7E\xA0-\xFF]{1,45}$/;
// The SDK puts `=` and `&` back unencoded after URL-encoding, so inside a value they would split
// the field at EPG. Identifiers carrying them are refused; the free-text description loses them.
const FIELD_SEPARATORS = /[&=]/;

/**
 * Card reversal through Addon Payments' EPG H2H "rebate". Our refund id is the
 * merchantTransactionId, so a retry after a timeout or reset is the same refund to EPG.
 */
export class AddonPaymentsConnector implements ReversalConnector {
  readonly provider = PROVIDER;

  constructor(
    private readonly config: AddonPaymentsConfig,
    private readonly secrets: SecretReader<AddonPaymentsSecret>,
    private readonly randomIv: () => Buffer = () => randomBytes(16),
  ) {}

  async submit(request: ReversalRequest): Promise<ReversalOutcome> {
    const refusal = refusalOf(request);
    if (refusal) return { kind: 'failed', retryable: false, detail: refusal };
    const secret = await this.secrets.get();
    const description = request.description.replace(/[&=\s]+/g, ' ').trim();
    const { encrypted, integrityCheck, iv } = encryptRebate(
      {
        amount: request.amount,
        merchantId: secret.merchantId,
        paymentSolution: this.config.paymentSolution,
        transactionId: request.payment.transactionId!,
        merchantTransactionId: request.refundId,
        ...(description && { description }),
      },
      secret.merchantPassword,
      this.randomIv(),
    );
    const query = new URLSearchParams({ merchantId: secret.merchantId, encrypted, integrityCheck });
    let outcome: ReversalOutcome;
    try {
      const response = await callProvider(PROVIDER, {
        method: 'POST',
        url: `${this.config.apiUrl}${REBATE_PATH}?${query.toString()}`,
        // The SDK posts an empty form body; everything travels in the query and these headers.
        headers: { apiVersion: EPG_API_VERSION, encryptionMode: 'CBC', iv, 'content-type': 'application/x-www-form-urlencoded' },
        body: '',
        timeoutMs: this.config.timeoutMs,
      });
      outcome = outcomeOfHttpResponse(response.status, response.text, request.refundId);
    } catch (error) {
      if (!(error instanceof ProviderCallError)) throw error;
      outcome = outcomeOfCallError(error);
    }
    // EPG may refuse a merchantTransactionId it has seen: after an attempt that may have reached it,
    // a refusal is no proof that nothing was paid (an operator checks the EPG back office).
    if (request.firstAttempt === false && outcome.kind === 'failed' && !outcome.retryable) {
      outcome = { kind: 'unknown', detail: `${outcome.detail}; an earlier attempt may have been paid, check the EPG back office` };
    }
    logger.info('EPG rebate answered', { refundId: request.refundId, orderId: request.orderId, outcome });
    return outcome;
  }

  /**
   * EPG documents no query for a rebate's state (docs/providers.md §4): only the synchronous answer and
   * the unsigned statusURL notification. Nothing is invented here; the sweeper escalates a refund
   * that stays unknown to manual review after its configured time.
   */
  async status(request: ReversalRequest): Promise<ReversalOutcome> {
    return {
      kind: 'unknown',
      detail: `EPG has no documented status query for rebates; refund ${request.refundId} needs its notification or a manual check in the EPG back office`,
    };
  }
}

/** Why this refund cannot be sent to EPG as it is, or undefined when it can. */
function refusalOf(request: ReversalRequest): string | undefined {
  const { refundId, payment, amount } = request;
  if (payment.provider !== PROVIDER) return `payment was taken by ${payment.provider}, not Addon Payments`;
  if (!MERCHANT_TRANSACTION_ID.test(refundId) || FIELD_SEPARATORS.test(refundId)) {
    return `refund id ${JSON.stringify(refundId.slice(0, 60))} cannot be an EPG merchantTransactionId (Latin-1, 1 to 45 characters, no & or =); it is never truncated because it is the idempotency reference`;
  }
  if (!payment.transactionId) return 'the payment has no EPG transaction id (Ap21 Stan) to refund against';
  if (FIELD_SEPARATORS.test(payment.transactionId)) return `EPG transaction id ${JSON.stringify(payment.transactionId)} contains & or =`;
  if (amount.minor <= 0) return `refund amount must be positive, got ${amount.minor} minor units`;
  return undefined;
}

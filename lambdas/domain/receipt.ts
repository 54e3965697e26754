import { RECEIPT_WAIVED_REF, RETURN_RECEIVED_REF, type Refund } from './refund';
import { REVERSAL_PROVIDERS, isReversalProvider, type PaymentProvider, type ReversalProvider } from '../providers/registry';

/**
 * When money moves, per channel (docs/design.md §2.9): when the return is seen (the default, for
 * every channel) or only once Ap21 shows it received. Pure: the stage's rule and what Ap21 shows.
 */

/** The channels whose payment refund-relay itself starts, so can hold: Apace's offer, and each card-reversal provider. */
export type ReceiptChannel = 'apace' | ReversalProvider;
export const RECEIPT_CHANNELS: readonly ReceiptChannel[] = ['apace', ...REVERSAL_PROVIDERS];

export interface ReceiptRules {
  /** Channels paid only once Ap21 shows the return received; every other channel pays when the return is seen. */
  readonly payOnReceipt: ReadonlySet<ReceiptChannel>;
  /** Return statuses that mean received (compared ignoring case and spaces). UNCONFIRMED names (docs/providers.md §3). */
  readonly receivedStatuses: readonly string[];
  /** How long a refund waits for the receipt before an operator is told. */
  readonly waitMs: number;
}

/** The issue's names for a received return (Return Received / Completed); Ap21's own are UNCONFIRMED beyond `Processing`. */
export const DEFAULT_RECEIVED_RETURN_STATUSES: readonly string[] = ['Return Received', 'Completed'];
export const DEFAULT_RECEIPT_WAIT_DAYS = 30;

/** Today's behaviour: every channel pays when the return is seen. */
export const PAY_WHEN_SEEN: ReceiptRules = {
  payOnReceipt: new Set(),
  receivedStatuses: DEFAULT_RECEIVED_RETURN_STATUSES,
  waitMs: DEFAULT_RECEIPT_WAIT_DAYS * 86_400_000,
};

const squeezed = (text: string) => text.replace(/\s+/g, '').toLowerCase();

/** Whether Ap21's `<Status>` of a return says the goods were received. */
export function returnReceived(status: string | undefined, rules: Pick<ReceiptRules, 'receivedStatuses'>): boolean {
  if (status === undefined) return false;
  const shown = squeezed(status);
  return shown !== '' && rules.receivedStatuses.some((listed) => squeezed(listed) === shown);
}

/**
 * Whether a new refund on `route` (paid by `provider` when it is a card reversal) must wait for the
 * receipt. `refundid` and `other` payments never reach a connector (docs/design.md §2.7), so never wait.
 */
export function waitsForReceipt(route: 'apace' | 'reversal', provider: PaymentProvider, rules: Pick<ReceiptRules, 'payOnReceipt'>): boolean {
  if (route === 'apace') return rules.payOnReceipt.has('apace');
  return isReversalProvider(provider) && rules.payOnReceipt.has(provider);
}

/**
 * Reads `AP21_PAY_ON_RECEIPT`: channel names, comma-separated; `reversal` stands for every
 * card-reversal provider. Answers the channels, or a problem in words. Refundid pays the customer
 * itself when they confirm the RMA (docs/providers.md §2): refund-relay has no call that holds it.
 */
export function parsePayOnReceipt(text: string): { channels: ReadonlySet<ReceiptChannel> } | { problem: string } {
  const channels = new Set<ReceiptChannel>();
  for (const entry of text.split(',').map((name) => name.trim().toLowerCase())) {
    if (entry === '') continue;
    if (entry === 'reversal') REVERSAL_PROVIDERS.forEach((name) => channels.add(name));
    else if ((RECEIPT_CHANNELS as readonly string[]).includes(entry)) channels.add(entry as ReceiptChannel);
    else if (entry === 'refundid')
      return { problem: 'refundid cannot pay on receipt: Refundid pays the customer itself when they confirm, and refund-relay cannot hold that payment' };
    else return { problem: `"${entry.slice(0, 64)}" is not one of ${[...RECEIPT_CHANNELS, 'reversal'].join(', ')}` };
  }
  return { channels };
}

/**
 * Whether the stage holds this provider's card reversals until receipt while it pays Apace offers
 * when the return is seen: then an Apace refund that falls back to card reversal has not waited for
 * the goods yet (docs/design.md §2.9). A stage that holds Apace too has waited already.
 */
export function fallbackHeldUntilReceipt(provider: PaymentProvider, rules: Pick<ReceiptRules, 'payOnReceipt'>): boolean {
  return !rules.payOnReceipt.has('apace') && isReversalProvider(provider) && rules.payOnReceipt.has(provider);
}

/**
 * Whether a refund about to be reversed on the card waits for Ap21 to show its return received
 * first (docs/design.md §2.9): it came from an Ap21 return through Apace (an offer expiry is only
 * ever set on the Apace route), nothing was sent to the card since it left Apace, the stage holds
 * its provider until receipt, and neither the receipt nor an operator's "card reversal now" was seen.
 */
export function fallbackWaitsForReceipt(
  refund: Pick<Refund, 'channel' | 'attempts' | 'offerExpiresAt' | 'source' | 'refs'>,
  provider: PaymentProvider,
  rules: Pick<ReceiptRules, 'payOnReceipt'>,
): boolean {
  return (
    refund.channel === 'reversal' &&
    refund.attempts === 0 &&
    refund.offerExpiresAt !== null &&
    refund.source.kind === 'ap21_return' &&
    refund.refs[RETURN_RECEIVED_REF] === undefined &&
    refund.refs[RECEIPT_WAIVED_REF] === undefined &&
    fallbackHeldUntilReceipt(provider, rules)
  );
}

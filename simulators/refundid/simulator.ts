import { refundidRefundId } from '../../lambdas/providers/refundid/statuses';

/**
 * Refundid's side of the custom integration, for local runs and tests only: Refundid calls us, so
 * this plays the caller. It fetches orders as its portal does and runs RMAs the documented way
 * (docs/providers.md §2): `refunding` first; once we accept, Refundid pays the customer from its own
 * funds and reports `refundid` (or `failed`). `payouts()` counts those payments per our refund id
 * (as our answer to `refunding` names it), whatever we answer to the final push, because the money
 * has left by then.
 */
export interface RefundidSimulatorOptions {
  /** Base URL of refund-relay's API. */
  readonly baseUrl: string;
  readonly bearerToken: string;
}

export interface RmaLine {
  readonly merchant_order_ref: string;
  readonly line_item_ref: string;
  readonly quantity: number;
  /** `RapiReturn`'s `compensation_method` (refund, exchange or credit); left out, a refund. */
  readonly compensation_method?: 'refund' | 'exchange' | 'credit';
}

export interface Rma {
  readonly refundid_id: string;
  readonly merchant_rma_ref?: string;
  readonly line_items: readonly RmaLine[];
}

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

export interface RmaRun {
  /** Our answer to `refunding`: Refundid pays only after a 200. */
  readonly reserved: Answer;
  readonly paid: boolean;
  readonly final?: Answer;
}

export interface RefundidSimulator {
  fetchOrder(query: Readonly<Record<string, string>>): Promise<Answer>;
  /** Posts one status push as Refundid would (bearer token, JSON). */
  push(status: 'refunding' | 'refundid' | 'failed', rma: Rma): Promise<Answer>;
  /** A customer's return end to end: `refunding`, then Refundid's payout and `refundid`, or `failed`. */
  runRma(rma: Rma, outcome?: 'refundid' | 'failed'): Promise<RmaRun>;
  payouts(): ReadonlyMap<string, number>;
}

export function createRefundidSimulator(options: RefundidSimulatorOptions): RefundidSimulator {
  const base = options.baseUrl.replace(/\/+$/, '');
  const payouts = new Map<string, number>();
  const headers = { authorization: `Bearer ${options.bearerToken}` };

  async function call(url: string, init: RequestInit): Promise<Answer> {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: kept as text for the test to show.
    }
    return { status: response.status, body };
  }

  const push = (status: 'refunding' | 'refundid' | 'failed', rma: Rma) =>
    call(`${base}/refundid/refund`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ ...rma, status }),
    });

  return {
    fetchOrder: (query) => call(`${base}/refundid/order?${new URLSearchParams(query).toString()}`, { headers }),
    push,
    async runRma(rma, outcome = 'refundid') {
      const reserved = await push('refunding', rma);
      if (reserved.status !== 200) return { reserved, paid: false };
      const paid = outcome === 'refundid';
      if (paid) {
        // Counted under the refund our answer named (the id rule's when it names none).
        const answered = (reserved.body as { refund_id?: unknown } | null)?.refund_id;
        const reference = typeof answered === 'string' ? answered : refundidRefundId(rma);
        payouts.set(reference, (payouts.get(reference) ?? 0) + 1);
      }
      return { reserved, paid, final: await push(outcome, rma) };
    },
    payouts: () => payouts,
  };
}

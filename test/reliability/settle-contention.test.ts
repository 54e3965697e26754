import { settle, type Located } from '../../lambdas/services/reversal-notices';
import { StoreContentionError, type OrderStore, type TransitionOutcome } from '../../lambdas/store/order-store';
import type { Refund } from '../../lambdas/domain/refund';

/**
 * A provider's proof of payment for a refund that keeps changing under it (every write overtaken)
 * must not be reported as applied: the PayPro IPN handler marks its inbox record processed when
 * `settle` returns, and a processed record is never replayed.
 */
describe('settling a reversal whose refund keeps changing', () => {
  const refund = { id: 'r1', state: 'reversal_submitted', channel: 'reversal', refs: {} } as unknown as Refund;
  const located = { order: { orderId: 'o1' }, refund } as unknown as Located;
  const ctx = { now: '2026-12-03T00:00:00.000Z', claimWindowMs: 300_000 };

  function overtaken(afterwards: Refund): { store: OrderStore; writes: () => number } {
    let writes = 0;
    const store = {
      applyEvent: async (): Promise<TransitionOutcome> => {
        writes++;
        return { applied: false, why: 'superseded', refund: afterwards };
      },
    } as unknown as OrderStore;
    return { store, writes: () => writes };
  }

  it('throws a retryable contention error after its bounded rounds, so the proof stays pending', async () => {
    const { store, writes } = overtaken(refund);
    await expect(settle(store, located, ctx, 'paypro', 'raw', 'IPN')).rejects.toBeInstanceOf(StoreContentionError);
    expect(writes()).toBe(3);
  });

  it('returns when the refund is already paid on the card, or no longer ours to book (logged)', async () => {
    await expect(settle(overtaken({ ...refund, state: 'paid' }).store, located, ctx, 'paypro', 'raw', 'IPN')).resolves.toBeUndefined();
    await expect(settle(overtaken({ ...refund, state: 'released' }).store, located, ctx, 'paypro', 'raw', 'IPN')).resolves.toBeUndefined();
  });
});

import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import type { Isolation, OrderStore } from '../store/order-store';

/**
 * The Ap21 records set aside for an operator (docs/design.md §2.5), as one poller run sees them.
 * A record is set aside once per fingerprint: read again unchanged (every run within the overlap
 * window lists it again) it is not recorded or counted again; changed, it is recorded again with
 * the new data. Each new one raises `Ap21OrdersIsolated` and `RefundsInManualReview` (the manual
 * review alarm); `Ap21IsolationsOpen`, emitted per run, stays above zero while any waits. A record
 * that goes through later (its order changed, an operator retried it) is released.
 */
export class Ap21Isolations {
  /** Isolations released by this instance (for an operator's retry report). */
  released = 0;

  private constructor(
    private readonly store: OrderStore,
    private readonly now: () => number,
    /** Subject → fingerprint of every open isolation, read once per run. */
    private readonly opened: Map<string, string>,
  ) {}

  static async load(store: OrderStore, now: () => number): Promise<Ap21Isolations> {
    const open = await store.listIsolations('ap21');
    return new Ap21Isolations(store, now, new Map(open.map((isolation) => [isolation.subject, isolation.fingerprint])));
  }

  get open(): number {
    return this.opened.size;
  }

  async setAside(isolation: Isolation): Promise<void> {
    const { opened } = await this.store.isolate(isolation, new Date(this.now()).toISOString());
    this.opened.set(isolation.subject, isolation.fingerprint);
    if (!opened) return;
    logger.error('Ap21 record set aside for an operator', { subject: isolation.subject, reason: isolation.reason, ...isolation.attributes });
    emitMetric('Ap21OrdersIsolated', 1);
    emitMetric('RefundsInManualReview', 1);
  }

  /** Releases `subject` if it is set aside: it has just gone through. */
  async release(subject: string): Promise<void> {
    const fingerprint = this.opened.get(subject);
    if (fingerprint === undefined) return;
    this.opened.delete(subject);
    if (!(await this.store.releaseIsolation('ap21', subject, fingerprint))) return;
    this.released++;
    logger.info('Ap21 record set aside earlier has gone through', { subject });
  }
}

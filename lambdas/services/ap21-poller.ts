import * as z from 'zod/mini';
import { ConfigurationError } from '../commons/config';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { describeIssues } from '../commons/validation';
import { DomainError } from '../domain/errors';
import { compareIds } from '../domain/returns';
import type { Ap21Client } from '../providers/ap21/client';
import type { Ap21Order, Ap21Return } from '../providers/ap21/schemas';
import { Ap21ResponseError, Ap21UnavailableError } from '../providers/ap21/statuses';
import type { OrderStore, Watermark, WatermarkCursor } from '../store/order-store';
import { ledgerOrderId } from './ap21-ledger';
import type { Ap21PushInbox } from './ap21-push';
import type { IngestOutcome, ReturnIntake } from './return-intake';

/** The part of the Ap21 client the poller reads with. */
export type Ap21OrderReader = Pick<Ap21Client, 'listOrdersChangedSince' | 'listReturns'>;

export interface Ap21PollerSettings {
  /** The watermark's name in the table. */
  readonly watermark: string;
  /** Read from this long before the watermark, against clock skew between Ap21 and us. */
  readonly overlapMs: number;
  readonly pageRows: number;
  /** Rows of the previous page read again at the start of the next: absorbs small shifts (see `Ap21Poller`). */
  readonly pageOverlap: number;
  /** Bounds of one run; the next run resumes where this one stopped. */
  readonly maxPages: number;
  readonly maxDurationMs: number;
  /** Where a stage without a watermark starts reading: this long before its first run. */
  readonly initialLookbackMs: number;
  /** Pushed returns left pending (a crash after the 202, Ap21 unavailable) re-processed per run. */
  readonly pendingPushes: number;
}

const whole = (fallback: number, min: number, max: number) => z._default(z.coerce.number().check(z.int(), z.gte(min), z.lte(max)), fallback);

const schema = z.object({
  AP21_POLL_OVERLAP_SECONDS: whole(600, 0, 86_400),
  AP21_POLL_PAGE_ROWS: whole(50, 2, 1000),
  AP21_POLL_PAGE_OVERLAP: whole(5, 1, 500),
  AP21_POLL_MAX_PAGES: whole(20, 1, 10_000),
  /** Keep well under the Lambda timeout: a run stops between orders once this is spent. */
  AP21_POLL_MAX_SECONDS: whole(50, 1, 840),
  AP21_POLL_INITIAL_LOOKBACK_HOURS: whole(24, 0, 24 * 90),
  AP21_POLL_PENDING_PUSHES: whole(20, 0, 500),
});

export function loadAp21PollerSettings(env: NodeJS.ProcessEnv = process.env): Ap21PollerSettings {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigurationError(`bad Ap21 poller environment: ${describeIssues(result.error.issues)}`);
  const config = result.data;
  if (config.AP21_POLL_PAGE_OVERLAP >= config.AP21_POLL_PAGE_ROWS) {
    throw new ConfigurationError('AP21_POLL_PAGE_OVERLAP must be smaller than AP21_POLL_PAGE_ROWS, or paging cannot move forward');
  }
  return {
    watermark: 'ap21-orders',
    overlapMs: config.AP21_POLL_OVERLAP_SECONDS * 1000,
    pageRows: config.AP21_POLL_PAGE_ROWS,
    pageOverlap: config.AP21_POLL_PAGE_OVERLAP,
    maxPages: config.AP21_POLL_MAX_PAGES,
    maxDurationMs: config.AP21_POLL_MAX_SECONDS * 1000,
    initialLookbackMs: config.AP21_POLL_INITIAL_LOOKBACK_HOURS * 3600_000,
    pendingPushes: config.AP21_POLL_PENDING_PUSHES,
  };
}

export type PollStop =
  /** Every order changed since the watermark was read: the watermark moved to the start of the pass. */
  | 'caught_up'
  /** The run's page or time budget ran out; the next run resumes from the saved cursor. */
  | 'bounded'
  /** Ap21 was unavailable; the next run resumes from the saved cursor. */
  | 'ap21_unavailable'
  /** Another poller moved the watermark meanwhile; its run counts, this one's progress is dropped. */
  | 'lost_race';

export interface PollRun {
  readonly stop: PollStop;
  readonly pages: number;
  readonly sweeps: number;
  readonly orders: number;
  readonly outcomes: Readonly<Partial<Record<IngestOutcome['kind'] | 'unrefundable', number>>>;
  readonly watermark: string;
  readonly lagSeconds: number;
}

export interface Ap21PollerDeps {
  readonly client: Ap21OrderReader;
  readonly store: OrderStore;
  readonly intake: ReturnIntake;
  readonly pushes?: Ap21PushInbox;
  readonly settings: Ap21PollerSettings;
  readonly now?: () => number;
}

/** Why a run stopped early; the cursor is saved so the next run resumes there. */
class RunInterrupted extends Error {
  constructor(readonly stop: 'bounded' | 'ap21_unavailable') {
    super(stop);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Ids a saved cursor keeps at most (the watermark item must stay far below DynamoDB's 400 KB). */
const MAX_SEEN_SAVED = 20_000;

/**
 * Reads the orders Ap21 says changed since the watermark, page by page, opens the ledger of each
 * (Refundid's order fetch needs it before any return exists) and ingests every return (docs/design.md §2.4). Ingestion is idempotent (refund ids derive from Ap21 return ids), so the
 * rule is simply: the watermark moves only when every order of a pass was ingested, and anything
 * that stops a run early — budget spent, Ap21 down, a crash — leads to reading some orders again,
 * never to skipping one.
 *
 * Paging by row number over a list sorted by update time has a trap: an order read earlier that
 * is updated while we page moves to the end, every row after it moves up, and an unread row can
 * slip behind the cursor. Orders never leave the list (`updatedAfter` only ever matches more), so
 * a pass proves itself complete by count: when the last page is read, the distinct orders read in
 * the pass must number the rows the list then had. If fewer, rows slipped past and the pass reads
 * the list again from the top, skipping the orders it already has (only list calls cost). Pages
 * start `pageOverlap` rows early, which absorbs small shifts without a second sweep.
 */
export class Ap21Poller {
  private readonly now: () => number;

  constructor(private readonly deps: Ap21PollerDeps) {
    this.now = deps.now ?? Date.now;
  }

  async run(): Promise<PollRun> {
    const { store, settings } = this.deps;
    const started = this.now();
    const watermark = await store.getWatermark(settings.watermark);
    const at = watermark?.at ?? iso(started - settings.initialLookbackMs);
    const cursor: WatermarkCursor = watermark?.cursor ?? { since: iso(Date.parse(at) - settings.overlapMs), startedAt: iso(started), startRow: 1, seen: [] };
    const tally = new Tally(cursor);

    let stop: PollStop = 'caught_up';
    try {
      await this.reprocessPushes(started);
      await this.readPass(cursor, started, tally);
    } catch (error) {
      if (!(error instanceof RunInterrupted)) {
        await this.save(watermark, { at, cursor: tally.savedCursor() }).catch((saveError: unknown) =>
          logger.error('could not save the poller cursor', { error: saveError }),
        );
        throw error;
      }
      stop = error.stop;
    }
    const next = stop === 'caught_up' ? { at: maxIso(at, cursor.startedAt) } : { at, cursor: tally.savedCursor() };
    if (!(await this.save(watermark, next))) stop = 'lost_race';
    const current = stop === 'lost_race' ? ((await store.getWatermark(settings.watermark))?.at ?? at) : next.at;
    const lagSeconds = Math.max(0, Math.round((this.now() - Date.parse(current)) / 1000));
    emitMetric('PollerLagSeconds', lagSeconds, 'Seconds');
    const run: PollRun = { stop, pages: tally.pages, sweeps: tally.sweeps, orders: tally.orders, outcomes: tally.outcomes, watermark: current, lagSeconds };
    logger.info('Ap21 poll finished', { ...run });
    return run;
  }

  /** Reads the pass from the cursor to a last page that proves nothing was skipped. */
  private async readPass(cursor: WatermarkCursor, started: number, tally: Tally): Promise<void> {
    const { client, settings } = this.deps;
    const overBudget = (countPages: boolean) => (countPages && tally.pages >= settings.maxPages) || this.now() - started >= settings.maxDurationMs;
    let startRow = cursor.startRow;
    for (;;) {
      // A run reads at least one new order (or sweeps once) before its budget can stop it, so runs move forward.
      if ((tally.orders > 0 || tally.sweeps > 0) && overBudget(true)) throw new RunInterrupted('bounded');
      const page = await this.ap21(() => client.listOrdersChangedSince(cursor.since, { startRow, pageRows: settings.pageRows }));
      tally.pages++;
      for (const [index, order] of page.orders.entries()) {
        if (tally.orders > 0 && overBudget(false)) throw new RunInterrupted('bounded');
        if (!tally.seen.has(order.orderId)) {
          await this.ingestOrder(order, tally);
          tally.orders++;
        }
        tally.seen.add(order.orderId);
        tally.nextRow = Math.max(1, startRow + index + 1 - settings.pageOverlap);
      }
      if (page.hasMore) {
        startRow = Math.max(startRow + 1, startRow + page.orders.length - settings.pageOverlap);
        continue;
      }
      const rows = page.totalRows ?? startRow - 1 + page.orders.length;
      if (tally.seen.size >= rows) return;
      logger.info('rows moved past the poller while it paged; reading the list again', { rows, read: tally.seen.size });
      tally.sweeps++;
      startRow = 1;
      tally.nextRow = 1;
    }
  }

  private async ingestOrder(order: Ap21Order, tally: Tally): Promise<void> {
    let returns: Ap21Return[];
    try {
      returns = await this.ap21(() => this.deps.client.listReturns(order.personId, order.orderId));
    } catch (error) {
      if (!(error instanceof Ap21ResponseError)) throw error;
      await this.unrefundable(order, `returns-of-${order.orderId}`, error, JSON.stringify({ order: order.orderId }));
      tally.count('unrefundable');
      return;
    }
    if (returns.length === 0) {
      await this.openLedger(order);
      return;
    }
    for (const ret of [...returns].sort((a, b) => compareIds(a.returnId, b.returnId))) {
      try {
        tally.count((await this.deps.intake.ingest(order, ret)).kind);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        await this.unrefundable(order, `return-${ret.returnId}-unrefundable`, error, JSON.stringify(ret));
        tally.count('unrefundable');
      }
    }
  }

  /** Opens the ledger of an order without returns; one that sold nothing has no ledger to open. */
  private async openLedger(order: Ap21Order): Promise<void> {
    try {
      await this.deps.intake.openLedger(order);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      logger.info('Ap21 order has nothing to refund; no ledger opened', { ap21_order: order.orderNumber, reason: error.message });
    }
  }

  /**
   * A return (or an order's return list) no rule can turn into a refund: units already refunded
   * elsewhere, an unknown SKU, a malformed document. It is kept for an operator, once, and the
   * poller moves on; it is tried again whenever its order changes.
   */
  private async unrefundable(order: Ap21Order, key: string, error: Error, raw: string): Promise<void> {
    const orderId = ledgerOrderId(order.orderId);
    const { stored } = await this.deps.store.recordInbound(orderId, { source: 'ap21', key, raw, note: error.message }, iso(this.now()));
    if (!stored) return;
    logger.error('Ap21 return needs an operator', { order_id: orderId, ap21_order: order.orderNumber, reason: error.message });
    emitMetric('RefundsInManualReview', 1);
  }

  private async reprocessPushes(started: number): Promise<void> {
    const { pushes, settings } = this.deps;
    if (!pushes || settings.pendingPushes === 0) return;
    await pushes.processPending(started, settings.pendingPushes);
  }

  /** Runs an Ap21 call; a retryable failure ends the run (resumed next time) instead of failing it. */
  private async ap21<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof Ap21UnavailableError) {
        logger.warn('Ap21 unavailable; the poller resumes on its next run', { error: error.message });
        throw new RunInterrupted('ap21_unavailable');
      }
      throw error;
    }
  }

  private async save(expected: Watermark | undefined, next: { readonly at: string; readonly cursor?: WatermarkCursor }): Promise<boolean> {
    return this.deps.store.advanceWatermark(this.deps.settings.watermark, expected, next, iso(this.now()));
  }
}

const maxIso = (a: string, b: string) => (a > b ? a : b);

class Tally {
  pages = 0;
  /** Extra reads of the list from the top, after rows slipped past the cursor. */
  sweeps = 0;
  /** Orders read (not skipped as already read) in this run. */
  orders = 0;
  readonly outcomes: Partial<Record<IngestOutcome['kind'] | 'unrefundable', number>> = {};
  /** Orders read in this pass (across runs, from the saved cursor). */
  readonly seen: Set<string>;
  /** The row a stopped run resumes at: `pageOverlap` before the first order not yet read. */
  nextRow: number;

  constructor(private readonly cursor: WatermarkCursor) {
    this.seen = new Set(cursor.seen);
    this.nextRow = cursor.startRow;
  }

  count(kind: IngestOutcome['kind'] | 'unrefundable'): void {
    this.outcomes[kind] = (this.outcomes[kind] ?? 0) + 1;
  }

  /** Where the pass got to. Beyond MAX_SEEN_SAVED ids the rest is dropped: those orders are read again. */
  savedCursor(): WatermarkCursor {
    return { ...this.cursor, startRow: this.nextRow, seen: [...this.seen].slice(0, MAX_SEEN_SAVED) };
  }
}

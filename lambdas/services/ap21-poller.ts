import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import { ConfigurationError, parseEnvironment, wholeWithin } from '../commons/config';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { DomainError } from '../domain/errors';
import { compareIds } from '../domain/returns';
import type { Ap21Client } from '../providers/ap21/client';
import { unreadableAnswer, type Ap21Order, type Ap21OrderPage, type Ap21Read, type Ap21Return } from '../providers/ap21/schemas';
import { Ap21Error, Ap21InvalidRequestError, Ap21ResponseError, Ap21UnavailableError, isRefundidPayment } from '../providers/ap21/statuses';
import type { Isolation, OrderStore, StoredIsolation, Watermark, WatermarkCursor } from '../store/order-store';
import { ledgerOrderId } from './ap21-ledger';
import { Ap21Isolations } from './ap21-isolations';
import type { Ap21PushInbox } from './ap21-push';
import { backoffDelayMs } from './retry-policy';
import { isReturnInFeed, originalsNamedBy, RETURNS_READ_MODES, returnSignsOf, type ReturnSignDetector, type ReturnsReadMode } from './ap21-returns-read';
import type { IngestOutcome, ReturnIntake } from './return-intake';

/** The part of the Ap21 client the poller reads with. */
export type Ap21OrderReader = Pick<Ap21Client, 'listOrdersChangedSince' | 'listReturns' | 'getOrder' | 'getOrderByNumber'>;

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
  /** Pushed returns left pending (a crash after the 202, Ap21 unavailable) re-processed per run, within half its time. */
  readonly pendingPushes: number;
  /** Retries of an Ap21 call that found Ap21 unavailable, within the run (0: the run stops at the first failure). */
  readonly retries: number;
  /** Full-jitter backoff between those retries: a random wait up to base × 2^(retry−1), at most max. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /**
   * Orders in a row whose returns Ap21 refuses before the run ends early. One refusal is about that
   * order; a row of them is likely about us (credentials, AP21_RETURNS_LIST_PATH), and then only a
   * handful per run are set aside while the alarm calls someone, not the whole window at once.
   */
  readonly maxRefusalsInARow: number;
  /**
   * Which changed orders have their returns read (`ReturnsReadMode`): `on_sign`, only those the feed
   * shows a sign of a return for; `always`, every one (one more Ap21 call per changed order).
   */
  readonly returnsRead: ReturnsReadMode;
}

const schema = z.object({
  AP21_POLL_OVERLAP_SECONDS: wholeWithin(600, 0, 86_400),
  AP21_POLL_PAGE_ROWS: wholeWithin(50, 2, 1000),
  AP21_POLL_PAGE_OVERLAP: wholeWithin(5, 1, 500),
  AP21_POLL_MAX_PAGES: wholeWithin(20, 1, 10_000),
  /** Keep well under the Lambda timeout: a run stops between orders once this is spent. */
  AP21_POLL_MAX_SECONDS: wholeWithin(50, 1, 840),
  AP21_POLL_INITIAL_LOOKBACK_HOURS: wholeWithin(24, 0, 24 * 90),
  AP21_POLL_PENDING_PUSHES: wholeWithin(20, 0, 500),
  AP21_POLL_RETRIES: wholeWithin(3, 0, 10),
  AP21_POLL_RETRY_BASE_MS: wholeWithin(500, 0, 60_000),
  AP21_POLL_RETRY_MAX_MS: wholeWithin(5_000, 0, 120_000),
  AP21_POLL_MAX_REFUSALS_IN_A_ROW: wholeWithin(5, 1, 1000),
  AP21_POLL_RETURNS_READ: z._default(z.enum(RETURNS_READ_MODES), 'on_sign'),
});

export function loadAp21PollerSettings(env: NodeJS.ProcessEnv = process.env): Ap21PollerSettings {
  const config = parseEnvironment(schema, env, 'Ap21 poller ');
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
    retries: config.AP21_POLL_RETRIES,
    retryBaseMs: config.AP21_POLL_RETRY_BASE_MS,
    retryMaxMs: config.AP21_POLL_RETRY_MAX_MS,
    maxRefusalsInARow: config.AP21_POLL_MAX_REFUSALS_IN_A_ROW,
    returnsRead: config.AP21_POLL_RETURNS_READ,
  };
}

export type PollStop =
  /** Every order changed since the watermark was read: the watermark moved to the start of the pass. */
  | 'caught_up'
  /** The run's page or time budget ran out; the next run resumes from the saved cursor. */
  | 'bounded'
  /** Ap21 was unavailable through every retry; the next run resumes from the saved cursor. */
  | 'ap21_unavailable'
  /** Ap21 refused the returns of `maxRefusalsInARow` orders in a row (each set aside); the next run goes on. */
  | 'ap21_refusing'
  /** Another poller moved the watermark meanwhile; its run counts, this one's progress is dropped. */
  | 'lost_race';

export type PollOutcome = IngestOutcome['kind'] | 'isolated';

export interface PollRun {
  readonly stop: PollStop;
  readonly pages: number;
  readonly sweeps: number;
  readonly orders: number;
  readonly outcomes: Readonly<Partial<Record<PollOutcome, number>>>;
  /** Ap21 calls tried again within the run after Ap21 was unavailable. */
  readonly retries: number;
  /** Records set aside for an operator, as the run ended. */
  readonly isolationsOpen: number;
  readonly watermark: string;
  readonly lagSeconds: number;
}

/**
 * What happens to a record no rule can process. `isolate` (the rule, docs/design.md §2.5) sets it
 * aside for an operator and goes on. `halt` is the behaviour before isolation existed (the run
 * stops at it, every time, and the watermark never passes it): kept only so the liveness suite can
 * show, as its control, what isolation prevents.
 */
export type UnprocessablePolicy = 'isolate' | 'halt';

export interface Ap21PollerDeps {
  readonly client: Ap21OrderReader;
  readonly store: OrderStore;
  readonly intake: ReturnIntake;
  readonly pushes?: Ap21PushInbox;
  readonly settings: Ap21PollerSettings;
  readonly now?: () => number;
  /** Drives the retry jitter. */
  readonly random?: () => number;
  readonly unprocessable?: UnprocessablePolicy;
  /**
   * How `on_sign` finds the signs of a return in an order of the feed (default `returnSignsOf`, and
   * returns in the feed name their original). Replaced only by the test that shows, as its control,
   * what a poller that sees no signs would miss.
   */
  readonly returnSigns?: ReturnSignDetector;
  /** Whether a return in the feed counts as a sign for its original order (default true); false only in that control. */
  readonly followReturnsInFeed?: boolean;
}

/** Why a run stopped early; the cursor is saved so the next run resumes there. */
class RunInterrupted extends Error {
  constructor(readonly stop: 'bounded' | 'ap21_unavailable' | 'ap21_refusing') {
    super(stop);
  }
}

/** A record the `halt` policy stops at, as the poller did before isolation. */
export class Ap21UnprocessableError extends Error {
  override readonly name = 'Ap21UnprocessableError';
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Ids a saved cursor keeps at most (the watermark item must stay far below DynamoDB's 400 KB). */
const MAX_SEEN_SAVED = 20_000;

/** What a run (or an operator's retry) works with. */
interface Work {
  readonly started: number;
  readonly tally: Tally;
  readonly isolations: Ap21Isolations;
  /** Orders whose returns were read in this run: a return in the feed naming one needs no second read. */
  readonly returnsRead: Set<string>;
  /** Orders ingested in this run. */
  readonly ingested: Set<string>;
  /** Readable orders met in this run, by lower-case order number: where a return in the feed finds its original. */
  readonly byNumber: Map<string, Ap21Order>;
  /** Lower-case order numbers the returns in the current page name as their original. */
  named: ReadonlySet<string>;
  /** Lower-case order numbers of the current page's readable orders. */
  pageNumbers: ReadonlySet<string>;
  /** Ap21 ids of the current page's unreadable orders, by lower-case order number. */
  unreadableIds: ReadonlyMap<string, string>;
  /**
   * Returns in the feed set aside because their original could not be read, by the original's
   * lower-case order number: a sign for that order when it is listed again (the return itself,
   * unchanged, is not), released once its returns are read.
   */
  readonly waiting: Map<string, Set<string>>;
}

async function newWork(started: number, tally: Tally, store: OrderStore, now: () => number): Promise<Work> {
  const isolations = await Ap21Isolations.load(store, now);
  const waiting = new Map<string, Set<string>>();
  for (const isolation of await store.listIsolations('ap21')) {
    const number = isolation.attributes.orderNumber?.toLowerCase();
    if (!isolation.subject.startsWith(RETURN_IN_FEED) || !number) continue;
    waiting.set(number, (waiting.get(number) ?? new Set()).add(isolation.subject));
  }
  return {
    started,
    tally,
    isolations,
    returnsRead: new Set(),
    ingested: new Set(),
    byNumber: new Map(),
    named: new Set(),
    pageNumbers: new Set(),
    unreadableIds: new Map(),
    waiting,
  };
}

/** The isolation subject of a return in the feed whose original could not be read. */
const RETURN_IN_FEED = 'return-in-feed:';

/** The result of an operator's `retry-ap21`: what ingesting the order did, and what still waits. */
export interface Ap21RetryResult {
  /** The order as read now, or why it could not be (refused by Ap21, or sent wrong). */
  readonly order: { readonly orderId: string; readonly orderNumber: string } | { readonly unread: string };
  readonly outcomes: Readonly<Partial<Record<PollOutcome, number>>>;
  readonly released: number;
  readonly stillIsolated: readonly StoredIsolation[];
}

/**
 * Reads the orders Ap21 says changed since the watermark, page by page, opens the ledger of each
 * (Refundid's order fetch needs it before any return exists) and ingests every return
 * (docs/design.md §2.4). Ingestion is idempotent (refund ids derive from Ap21 return ids), so the
 * rule is simply: the watermark moves only when every order of a pass was ingested or set aside,
 * and anything that stops a run early — budget spent, Ap21 down, a crash — leads to reading some
 * orders again, never to skipping one.
 *
 * Nothing one record does stops the others (docs/design.md §2.5). Orders are read one by one out
 * of each page; an order Ap21 sent wrong, an order whose returns Ap21 refuses (403 with an API
 * code, 401, a 404 that is not "no data"), and a return no ledger rule accepts are set aside once
 * for an operator (`Ap21Isolations`: raw data, reason, metric) and the pass goes on. A page that
 * cannot be read at all (not well-formed, too large) is read again one row at a time. Each is
 * tried again whenever its order is listed again (every change in Ap21 lists it), and released
 * once it goes through; `retry-ap21` tries one at once. Only Ap21 being unavailable (5xx,
 * throttling, timeouts, resets) ends a run, after `retries` in-run retries with full jitter.
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
  private readonly random: () => number;
  private readonly halts: boolean;
  private readonly returnSigns: ReturnSignDetector;
  private readonly followsReturns: boolean;

  constructor(private readonly deps: Ap21PollerDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.halts = deps.unprocessable === 'halt';
    this.returnSigns = deps.returnSigns ?? returnSignsOf;
    this.followsReturns = deps.followReturnsInFeed ?? true;
  }

  /** One bounded run. PollerLagSeconds is emitted whatever happens, a failed run included. */
  async run(): Promise<PollRun> {
    const { store, settings } = this.deps;
    const started = this.now();
    let lagFrom: string | undefined;
    try {
      const watermark = await store.getWatermark(settings.watermark);
      const at = watermark?.at ?? iso(started - settings.initialLookbackMs);
      lagFrom = at;
      const cursor: WatermarkCursor = watermark?.cursor ?? { since: iso(Date.parse(at) - settings.overlapMs), startedAt: iso(started), startRow: 1, seen: [] };
      const work = await newWork(started, new Tally(cursor), store, this.now);

      let stop: PollStop = 'caught_up';
      try {
        await this.reprocessPushes(started);
        await this.readPass(cursor, work);
      } catch (error) {
        if (!(error instanceof RunInterrupted)) {
          await this.save(watermark, { at, cursor: work.tally.savedCursor() }).catch((saveError: unknown) =>
            logger.error('could not save the poller cursor', { error: saveError }),
          );
          throw error;
        }
        stop = error.stop;
      }
      const next = stop === 'caught_up' ? { at: maxIso(at, cursor.startedAt) } : { at, cursor: work.tally.savedCursor() };
      if (!(await this.save(watermark, next))) stop = 'lost_race';
      const current = stop === 'lost_race' ? ((await store.getWatermark(settings.watermark))?.at ?? at) : next.at;
      lagFrom = current;
      const { tally, isolations } = work;
      emitMetric('Ap21IsolationsOpen', isolations.open);
      const run: PollRun = {
        stop,
        pages: tally.pages,
        sweeps: tally.sweeps,
        orders: tally.orders,
        outcomes: tally.outcomes,
        retries: tally.retries,
        isolationsOpen: isolations.open,
        watermark: current,
        lagSeconds: this.lagSeconds(current),
      };
      logger.info('Ap21 poll finished', { ...run });
      return run;
    } finally {
      // A run that failed says how far behind the last good one left us: silence would look like health.
      if (lagFrom !== undefined) emitMetric('PollerLagSeconds', this.lagSeconds(lagFrom), 'Seconds');
    }
  }

  /**
   * An operator's retry of one order (`npm run ops -- retry-ap21`): reads it from Ap21 now and
   * ingests its returns as a run would, releasing what goes through. The watermark is not touched.
   */
  async retryOrder(personId: string, ap21OrderId: string): Promise<Ap21RetryResult> {
    const { store, client } = this.deps;
    const work = await newWork(this.now(), new Tally({ since: '', startedAt: '', startRow: 1, seen: [] }), store, this.now);
    const stillIsolated = async () => (await store.listIsolations('ap21')).filter((isolation) => isolation.attributes.ap21OrderId === ap21OrderId);
    let order: Ap21Order;
    try {
      order = await this.ap21(() => client.getOrder(personId, ap21OrderId), work);
    } catch (error) {
      if (error instanceof RunInterrupted) throw new Ap21UnavailableError('Ap21 is unavailable; try again later', { ambiguous: false });
      if (!(error instanceof Ap21Error)) throw error;
      return { order: { unread: error.message }, outcomes: {}, released: 0, stillIsolated: await stillIsolated() };
    }
    try {
      // An operator asked for this order: its returns are read whatever the feed shows.
      await this.ingestOrder({ kind: 'read', value: order, fingerprint: `retry:${ap21OrderId}` }, work, true);
    } catch (error) {
      if (error instanceof RunInterrupted) throw new Ap21UnavailableError('Ap21 is unavailable; try again later', { ambiguous: false });
      throw error;
    }
    return {
      order: { orderId: order.orderId, orderNumber: order.orderNumber },
      outcomes: work.tally.outcomes,
      released: work.isolations.released,
      stillIsolated: await stillIsolated(),
    };
  }

  /** Reads the pass from the cursor to a last page that proves nothing was skipped. */
  private async readPass(cursor: WatermarkCursor, work: Work): Promise<void> {
    const { settings } = this.deps;
    const { tally } = work;
    const overBudget = (countPages: boolean) => (countPages && tally.pages >= settings.maxPages) || this.now() - work.started >= settings.maxDurationMs;
    let startRow = cursor.startRow;
    for (;;) {
      // A run reads at least one new order (or sweeps once) before its budget can stop it, so runs move forward.
      if ((tally.orders > 0 || tally.sweeps > 0) && overBudget(true)) throw new RunInterrupted('bounded');
      const page = await this.readPage(cursor.since, startRow, work);
      tally.pages++;
      const readable = page.rows.flatMap((row) => (row.kind === 'read' ? [row.value] : []));
      work.named = this.followsReturns ? originalsNamedBy(readable) : new Set();
      work.pageNumbers = new Set(readable.map((order) => order.orderNumber.toLowerCase()));
      work.unreadableIds = new Map(
        page.rows.flatMap((row) =>
          row.kind === 'unreadable' && row.unreadable.orderNumber && row.unreadable.id
            ? [[row.unreadable.orderNumber.toLowerCase(), row.unreadable.id] as const]
            : [],
        ),
      );
      for (const [index, row] of page.rows.entries()) {
        if (tally.orders > 0 && overBudget(false)) throw new RunInterrupted('bounded');
        const key = rowKey(row);
        if (!tally.seen.has(key)) {
          await this.ingestOrder(row, work);
          tally.orders++;
        }
        tally.seen.add(key);
        tally.nextRow = Math.max(1, startRow + index + 1 - settings.pageOverlap);
      }
      if (page.hasMore) {
        startRow = Math.max(startRow + 1, startRow + page.rows.length - settings.pageOverlap);
        continue;
      }
      const rows = page.totalRows ?? startRow - 1 + page.rows.length;
      if (tally.seen.size >= rows) return;
      logger.info('rows moved past the poller while it paged; reading the list again', { rows, read: tally.seen.size });
      tally.sweeps++;
      startRow = 1;
      tally.nextRow = 1;
    }
  }

  /**
   * One page of the changed-orders list. A page Ap21 cannot give us whole (not well-formed because
   * of one order, larger than we read) is read again one row at a time, so only the rows that are
   * themselves unreadable are set aside.
   */
  private async readPage(since: string, startRow: number, work: Work): Promise<Ap21OrderPage> {
    const { client, settings } = this.deps;
    try {
      return await this.ap21(() => client.listOrdersChangedSince(since, { startRow, pageRows: settings.pageRows }), work);
    } catch (error) {
      if (!(error instanceof Ap21ResponseError) || this.halts) throw error;
      logger.warn('Ap21 page unreadable as a whole; reading it one order at a time', { start_row: startRow, reason: error.message });
    }
    const rows: Ap21Read<Ap21Order>[] = [];
    let totalRows: number | undefined;
    let hasMore = true;
    for (let row = startRow; hasMore && row < startRow + settings.pageRows; row++) {
      try {
        const single = await this.ap21(() => client.listOrdersChangedSince(since, { startRow: row, pageRows: 1 }), work);
        rows.push(...single.rows);
        totalRows = single.totalRows ?? totalRows;
        hasMore = single.hasMore;
      } catch (error) {
        if (!(error instanceof Ap21ResponseError)) throw error;
        rows.push(unreadableAnswer(error.document, error.message));
      }
    }
    return { rows, startRow, pageRows: settings.pageRows, ...(totalRows !== undefined && { totalRows }), hasMore };
  }

  private async ingestOrder(row: Ap21Read<Ap21Order>, work: Work, readReturns = false): Promise<void> {
    const { isolations } = work;
    if (row.kind === 'unreadable') {
      const { id, personId, orderNumber, reason, raw } = row.unreadable;
      await this.setAside(work, {
        subject: id !== undefined ? `order:${id}` : `row:${row.fingerprint}`,
        fingerprint: row.fingerprint,
        reason: `Ap21 order unreadable: ${reason}`,
        raw,
        attributes: {
          ...(id !== undefined && { ap21OrderId: id }),
          ...(personId !== undefined && { personId }),
          ...(orderNumber !== undefined && { orderNumber }),
        },
      });
      return;
    }
    const order = row.value;
    work.ingested.add(order.orderId);
    work.byNumber.set(order.orderNumber.toLowerCase(), order);
    await isolations.release(`order:${order.orderId}`);
    if (isRefundidNegativeOrder(order)) {
      await this.bookRefundidOrder(order, row.fingerprint, work);
      return;
    }
    if (readReturns || this.deps.settings.returnsRead === 'always') {
      await this.readReturns(order, work);
      return;
    }
    if (this.followsReturns && isReturnInFeed(order)) {
      await this.followReturn(order, row.fingerprint, work);
      return;
    }
    const signs = [...this.returnSigns(order)];
    if (work.named.has(order.orderNumber.toLowerCase())) signs.push('a return in the changed-orders list names it');
    if (work.waiting.has(order.orderNumber.toLowerCase())) signs.push('a return set aside earlier names it');
    if (signs.length === 0 || work.returnsRead.has(order.orderId)) {
      await this.openLedger(order);
      return;
    }
    logger.debug('Ap21 order shows a sign of a return; reading its returns', { ap21_order: order.orderNumber, signs });
    await this.readReturns(order, work);
  }

  /**
   * A return in the changed-orders list (negative quantities, not Refundid's): the returns of the
   * order its `OrigOrderNum` names are read, the way every return is ingested, so the refund is
   * `ap21-<return id>` whichever way it was found. The original is found in this page (then read
   * at its own turn), among the orders this run met, or else by `GET /OrderNumbers/{n}`. One whose
   * original cannot be identified, or is another person's, is set aside for an operator.
   */
  private async followReturn(ret: Ap21Order, fingerprint: string, work: Work): Promise<void> {
    const subject = `${RETURN_IN_FEED}${ret.orderId}`;
    const number = ret.origOrderNumber?.trim();
    const key = number?.toLowerCase() ?? '';
    let original = work.byNumber.get(key);
    // Named by its original (what `retry-ap21` reads, and what is listed again), the return's own ids beside.
    const originalId = original?.orderId ?? work.unreadableIds.get(key);
    const attributes = {
      ...(originalId !== undefined && { ap21OrderId: originalId }),
      personId: ret.personId,
      orderNumber: number ?? ret.orderNumber,
      returnOrderId: ret.orderId,
      returnOrderNumber: ret.orderNumber,
    };
    const holdFor = async (reason: string) => {
      const reasonText = `Ap21 return ${ret.orderNumber} in the changed-orders list: ${reason}`;
      await this.setAside(work, { subject, fingerprint, reason: reasonText, raw: JSON.stringify(ret), attributes });
      if (number) work.waiting.set(key, (work.waiting.get(key) ?? new Set()).add(subject));
    };
    if (!number) return holdFor('names no original order (no OrigOrderNum), so the order whose returns to read is unknown');
    const upcoming = work.pageNumbers.has(key) && (!original || !work.ingested.has(original.orderId));
    if (upcoming || (original && work.returnsRead.has(original.orderId))) {
      await work.isolations.release(subject);
      return;
    }
    if (!original) {
      try {
        original = await this.ap21(() => this.deps.client.getOrderByNumber(number), work);
      } catch (error) {
        if (!(error instanceof Ap21Error) || error.retryable) throw error;
        return holdFor(`its original order ${number} cannot be read from Ap21: ${error.message}`);
      }
      if (!original) return holdFor(`Ap21 has no original order ${number}`);
    }
    if (original.personId !== ret.personId) {
      return holdFor(`its original order ${original.orderNumber} is person ${original.personId}'s, the return person ${ret.personId}'s`);
    }
    await this.readReturns(original, work);
    await work.isolations.release(subject);
  }

  /** Reads an order's returns and ingests each; opens its ledger when it has none. */
  private async readReturns(order: Ap21Order, work: Work): Promise<void> {
    const { tally, isolations } = work;
    const attributes = { ap21OrderId: order.orderId, personId: order.personId, orderNumber: order.orderNumber };
    work.returnsRead.add(order.orderId);
    let returns: Ap21Read<Ap21Return>[];
    try {
      returns = await this.ap21(() => this.deps.client.listReturns(order.personId, order.orderId), work);
    } catch (error) {
      if (!(error instanceof Ap21Error) || error.retryable) throw error;
      const refused = !(error instanceof Ap21ResponseError);
      await this.setAside(work, {
        subject: `returns:${order.orderId}`,
        // Keyed on what Ap21 said: the same refusal is recorded once, however often the order is listed.
        fingerprint: `${error.name}:${error.message}`,
        reason: `Ap21 could not give the returns of order ${order.orderNumber}: ${error.message}`,
        raw: JSON.stringify({
          order: attributes,
          error: { name: error.name, message: error.message },
          document: (error as Partial<Ap21ResponseError>).document,
        }),
        attributes,
      });
      if (refused && ++tally.refusalsInARow >= this.deps.settings.maxRefusalsInARow) {
        // The cursor is past this order (it is set aside); what follows waits for the next run.
        logger.error('Ap21 refused the returns of several orders in a row; the run ends early', { orders: tally.refusalsInARow });
        throw new RunInterrupted('ap21_refusing');
      }
      return;
    }
    tally.refusalsInARow = 0;
    await isolations.release(`returns:${order.orderId}`);
    // Returns in the feed that waited for this order are read now.
    for (const waiting of work.waiting.get(order.orderNumber.toLowerCase()) ?? []) await isolations.release(waiting);
    work.waiting.delete(order.orderNumber.toLowerCase());
    if (returns.length === 0) {
      await this.openLedger(order);
      return;
    }
    for (const ret of sortedReturns(returns)) {
      if (ret.kind === 'unreadable') {
        const { id, reason, raw } = ret.unreadable;
        await this.setAside(work, {
          subject: id !== undefined ? `return:${id}` : `row:${ret.fingerprint}`,
          fingerprint: ret.fingerprint,
          reason: `Ap21 return of order ${order.orderNumber} unreadable: ${reason}`,
          raw,
          attributes: { ...attributes, ...(id !== undefined && { returnId: id }) },
        });
        continue;
      }
      try {
        // The intake may ask Ap21 too (the exchange order a return names, docs/design.md §2.8): retried like
        // every Ap21 call of the run, and safe to repeat (a return is booked once however often it is ingested).
        tally.count((await this.ap21(() => this.deps.intake.ingest(order, ret.value), work)).kind);
        await isolations.release(`return:${ret.value.returnId}`);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        // A rule said no (units refunded elsewhere, an unknown SKU): never halted on, even before isolation existed.
        await this.setAside(
          work,
          {
            subject: `return:${ret.value.returnId}`,
            fingerprint: ret.fingerprint,
            reason: `Ap21 return ${ret.value.orderNumber} cannot be refunded: ${error.message}`,
            raw: JSON.stringify(ret.value),
            attributes: { ...attributes, returnId: ret.value.returnId, orderId: ledgerOrderId(order.orderId) },
          },
          true,
        );
      }
    }
  }

  /**
   * Refundid's negative order (docs/providers.md §2, "Negative Order Creation" and "RMA creation"):
   * Refundid already refunded the units, and this order is its record in Ap21. It is booked, like
   * a return Ap21 shows refunded by Refundid, as a Refundid refund of the original order's units
   * (id `ap21-<negative order id>`, source `ap21_refundid`, tied to Refundid's own RMA when we have
   * it), so the units are never refunded again on another channel. The original order is the one
   * named by its `OrigOrderNum` or, failing that, by a Refundid payment's `Reference` (which of the
   * two Refundid writes is UNCONFIRMED), read with `GET /OrderNumbers/{n}`. One whose original
   * order cannot be identified is set aside for an operator with the reason, never skipped.
   */
  private async bookRefundidOrder(order: Ap21Order, fingerprint: string, work: Work): Promise<void> {
    const subject = `refundid-order:${order.orderId}`;
    const attributes = { ap21OrderId: order.orderId, personId: order.personId, orderNumber: order.orderNumber };
    const holdFor = (reason: string, ruleRefusal = false) =>
      this.setAside(
        work,
        { subject, fingerprint, reason: `Refundid negative order ${order.orderNumber}: ${reason}`, raw: JSON.stringify(order), attributes },
        ruleRefusal,
      );
    const named = originalOrderNumbers(order);
    if (named.length === 0) return holdFor('names no original order (no OrigOrderNum, no Refundid payment Reference)');
    let original: Ap21Order | undefined;
    for (const number of named) {
      try {
        original = await this.ap21(() => this.deps.client.getOrderByNumber(number), work);
      } catch (error) {
        if (error instanceof Ap21InvalidRequestError) continue;
        if (!(error instanceof Ap21Error) || error.retryable) throw error;
        return holdFor(`its original order ${number} cannot be read from Ap21: ${error.message}`);
      }
      if (original) break;
    }
    if (!original) return holdFor(`Ap21 has no original order ${named.join(' or ')}`);
    if (original.personId !== order.personId) {
      return holdFor(`its original order ${original.orderNumber} is person ${original.personId}'s, the negative order person ${order.personId}'s`);
    }
    try {
      work.tally.count((await this.deps.intake.ingest(original, refundidReturnOf(order, original))).kind);
      await work.isolations.release(subject);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await holdFor(`cannot be booked against order ${original.orderNumber}: ${error.message}`, true);
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

  /** Sets a record aside (once per fingerprint) and goes on; under `halt`, stops the run at it instead. */
  private async setAside(work: Work, isolation: Omit<Isolation, 'source'>, ruleRefusal = false): Promise<void> {
    if (this.halts && !ruleRefusal) throw new Ap21UnprocessableError(isolation.reason);
    await work.isolations.setAside({ source: 'ap21', ...isolation });
    work.tally.count('isolated');
  }

  private async reprocessPushes(started: number): Promise<void> {
    const { pushes, settings } = this.deps;
    if (!pushes || settings.pendingPushes === 0) return;
    // Pushes share the run's time: they may use half of it, the changed-orders pass has the rest.
    await pushes.processPending(started, settings.pendingPushes, () => this.now() - started < settings.maxDurationMs / 2);
  }

  /**
   * Runs an Ap21 call, retrying while Ap21 is unavailable: up to `retries` more times with full
   * jitter (at least any Retry-After), within the run's time. Then the run ends, to resume next time.
   */
  private async ap21<T>(call: () => Promise<T>, work: Work): Promise<T> {
    const { settings } = this.deps;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof Ap21UnavailableError)) throw error;
        const policy = { baseDelayMs: settings.retryBaseMs, maxDelayMs: settings.retryMaxMs, maxAttempts: 0, leaseMs: 0, syncDelayMs: 0 };
        const delayMs = Math.max(error.details.retryAfterMs ?? 0, backoffDelayMs(attempt, policy, this.random));
        const remainingMs = work.started + settings.maxDurationMs - this.now();
        if (attempt > settings.retries || delayMs >= remainingMs) {
          logger.warn('Ap21 unavailable; the poller resumes on its next run', { error: error.message, attempts: attempt });
          throw new RunInterrupted('ap21_unavailable');
        }
        work.tally.retries++;
        await sleep(delayMs);
      }
    }
  }

  private lagSeconds(watermarkAt: string): number {
    return Math.max(0, Math.round((this.now() - Date.parse(watermarkAt)) / 1000));
  }

  private async save(expected: Watermark | undefined, next: { readonly at: string; readonly cursor?: WatermarkCursor }): Promise<boolean> {
    return this.deps.store.advanceWatermark(this.deps.settings.watermark, expected, next, iso(this.now()));
  }
}

const maxIso = (a: string, b: string) => (a > b ? a : b);

/** An order that only gives units back and carries a Refundid refund payment: Refundid's record of its refund. */
export function isRefundidNegativeOrder(order: Ap21Order): boolean {
  const units = order.lines.map((line) => line.quantity);
  return units.some((quantity) => quantity < 0) && units.every((quantity) => quantity <= 0) && order.payments.some(isRefundidPayment);
}

/** The order numbers a negative order may name its original by, most explicit first. */
function originalOrderNumbers(order: Ap21Order): string[] {
  const references = order.payments.filter(isRefundidPayment).map((payment) => payment.reference?.trim());
  const named = [order.origOrderNumber?.trim(), ...references].filter((number): number is string => !!number && number !== order.orderNumber);
  return [...new Set(named)];
}

/** A negative order read as the return it stands for: its id and number, the original's number, its lines and payments. */
function refundidReturnOf(order: Ap21Order, original: Ap21Order): Ap21Return {
  return {
    returnId: order.orderId,
    orderNumber: order.orderNumber,
    origOrderNumber: original.orderNumber,
    personId: order.personId,
    currency: order.currency,
    lines: order.lines
      .filter((line) => line.quantity < 0)
      .map((line) => ({ lineId: line.lineId, skuId: line.skuId, quantity: line.quantity, value: line.value, ...(line.price && { price: line.price }) })),
    payments: order.payments,
    paymentsVisible: true,
  };
}

/** How a row counts as read in a pass: its order id, or its fingerprint when not even that could be read. */
function rowKey(row: Ap21Read<Ap21Order>): string {
  if (row.kind === 'read') return row.value.orderId;
  return row.unreadable.id ?? `row:${row.fingerprint}`;
}

/** Returns in id order (the order Ap21 created them), unreadable ones last. */
function sortedReturns(returns: readonly Ap21Read<Ap21Return>[]): Ap21Read<Ap21Return>[] {
  const idOf = (ret: Ap21Read<Ap21Return>) => (ret.kind === 'read' ? ret.value.returnId : undefined);
  return [...returns].sort((a, b) => {
    const [x, y] = [idOf(a), idOf(b)];
    if (x === undefined || y === undefined) return (x === undefined ? 1 : 0) - (y === undefined ? 1 : 0);
    return compareIds(x, y);
  });
}

class Tally {
  pages = 0;
  /** Extra reads of the list from the top, after rows slipped past the cursor. */
  sweeps = 0;
  /** Orders read (not skipped as already read) in this run. */
  orders = 0;
  retries = 0;
  readonly outcomes: Partial<Record<PollOutcome, number>> = {};
  /** Orders read in this pass (across runs, from the saved cursor). */
  readonly seen: Set<string>;
  /** The row a stopped run resumes at: `pageOverlap` before the first order not yet read. */
  nextRow: number;
  /** Orders in a row whose returns Ap21 refused. */
  refusalsInARow = 0;

  constructor(private readonly cursor: WatermarkCursor) {
    this.seen = new Set(cursor.seen);
    this.nextRow = cursor.startRow;
  }

  count(kind: PollOutcome): void {
    this.outcomes[kind] = (this.outcomes[kind] ?? 0) + 1;
  }

  /** Where the pass got to. Beyond MAX_SEEN_SAVED ids the rest is dropped: those orders are read again. */
  savedCursor(): WatermarkCursor {
    return { ...this.cursor, startRow: this.nextRow, seen: [...this.seen].slice(0, MAX_SEEN_SAVED) };
  }
}

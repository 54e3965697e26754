import { remainingMs } from '../commons/deadline';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import type { TransitionContext } from '../domain/refund';
import { own } from '../domain/order';
import { apaceNotificationSchema, notificationKind } from '../providers/apace/schemas';
import type { OrderStore, PendingInbound } from '../store/order-store';
import { checkApaceRecord, contradicts, processApaceNotification, type ApaceRecord } from './apace-callbacks';
import { replayPayProIpn } from './paypro-ipn';

/** Tells the dispatcher an order has work: SQS in AWS, an in-process queue locally. */
export interface Doorbell {
  ring(orderIds: readonly string[]): Promise<void>;
}

/**
 * The backstop of the outbox (docs/design.md §2.4): orders whose due time has come — work whose doorbell was
 * lost, leases of crashed dispatchers, offers that expired, reversals a provider left pending,
 * Apace payouts whose `processed` is overdue — are handed to the dispatcher again. The dispatcher
 * decides what each refund needs.
 *
 * Every sweep reports `OutboxOverdueSeconds`, how long the longest-due order has been due (0 when
 * none is): work the dispatcher keeps failing to do, or cannot keep up with, grows it, and a sweeper
 * that stops running stops it (docs/design.md §2.5, the wait table: both raise `OutboxOverdue`).
 */
export async function sweep(store: OrderStore, doorbell: Doorbell, nowMs: number, limit = 200): Promise<string[]> {
  const due = await store.findDue(new Date(nowMs).toISOString(), limit);
  const oldest = due[0];
  emitMetric('OutboxOverdueSeconds', oldest ? Math.max(0, Math.floor((nowMs - Date.parse(oldest.dueAt)) / 1000)) : 0, 'Seconds');
  const orderIds = due.map((entry) => entry.orderId);
  if (orderIds.length) await doorbell.ring(orderIds);
  return orderIds;
}

/** A message stored this long ago and still pending was not applied by its own request (a crash). */
export const INBOX_REPLAY_AFTER_MS = 60_000;

/** No record is started with less than this left before the invocation's deadline: an Apace check may take it. */
const REPLAY_TIME_NEEDED_MS = 12_000;

export interface InboxReplayDeps {
  readonly store: OrderStore;
  /** Apace's own record; absent, contradicting messages stay pending (and counted). */
  readonly apace?: ApaceRecord;
  readonly claimWindowMs: number;
  readonly apaceProcessedWithinMs?: number;
}

export interface InboxReplayResult {
  /** Applied again after their own request stopped short. */
  readonly replayed: number;
  /** Checked against Apace's own record and settled. */
  readonly checked: number;
  /** Still pending: Apace unreachable, or young enough that their own request may still be applying them. */
  readonly waiting: number;
}

/**
 * Nothing stored is forgotten (docs/design.md §2.4, §2.5): every Apace notification still pending in
 * the inbox is either checked against Apace's own record (it contradicted what we knew) or, once
 * older than `INBOX_REPLAY_AFTER_MS`, applied again (its own request crashed after storing it); so
 * is a settling PayPro IPN. Applying twice changes nothing. What stays pending is reported as
 * `InboxRecordsWaiting`. (Ap21 pushes have their own replay in the poller run.)
 */
export async function replayInbox(deps: InboxReplayDeps, nowMs: number, limit = 50): Promise<InboxReplayResult> {
  const now = new Date(nowMs).toISOString();
  const pending = await deps.store.findPendingInbound('apace', now, limit);
  const ctx: TransitionContext = {
    now,
    claimWindowMs: deps.claimWindowMs,
    ...(deps.apaceProcessedWithinMs !== undefined && { apaceProcessedWithinMs: deps.apaceProcessedWithinMs }),
  };
  let replayed = 0;
  let checked = 0;
  let waiting = 0;
  for (const record of pending) {
    if (remainingMs() < REPLAY_TIME_NEEDED_MS) break;
    try {
      const outcome = await replayOne(deps, record, ctx, nowMs);
      if (outcome === 'replayed') replayed++;
      else if (outcome === 'checked') checked++;
      else if (outcome === 'waiting' && nowMs - Date.parse(record.receivedAt) >= INBOX_REPLAY_AFTER_MS) waiting++;
    } catch (error) {
      waiting++;
      logger.error('replaying an inbox record failed; next sweep tries again', { order_id: record.orderId, key: record.key, error });
    }
  }
  // A settling PayPro IPN needs no check: it was verified before it was stored.
  for (const record of await deps.store.findPendingInbound('paypro', new Date(nowMs - INBOX_REPLAY_AFTER_MS).toISOString(), limit)) {
    if (remainingMs() < REPLAY_TIME_NEEDED_MS) break;
    try {
      await replayPayProIpn(deps.store, record, ctx);
      replayed++;
    } catch (error) {
      waiting++;
      logger.error('replaying an inbox record failed; next sweep tries again', { order_id: record.orderId, key: record.key, error });
    }
  }
  emitMetric('InboxRecordsWaiting', waiting);
  return { replayed, checked, waiting };
}

async function replayOne(
  deps: InboxReplayDeps,
  record: PendingInbound,
  ctx: TransitionContext,
  nowMs: number,
): Promise<'replayed' | 'checked' | 'waiting' | 'young'> {
  const refundId = record.attributes.refundId;
  const parsed = apaceNotificationSchema.safeParse(safeJson(record.raw));
  const order = await deps.store.getOrder(record.orderId);
  const refund = order && refundId ? own(order.refunds, refundId) : undefined;
  if (!refundId || !parsed.success || !refund) {
    await deps.store.settleInbound(record.orderId, record.source, record.key, 'failed', 'stored Apace message names no refund we hold', ctx.now);
    logger.error('a stored Apace message cannot be applied again', { order_id: record.orderId, key: record.key });
    return 'checked';
  }
  const ids = { orderId: record.orderId, refundId };
  if (contradicts(refund, notificationKind(parsed.data))) {
    if (!deps.apace) return 'waiting';
    const outcome = await checkApaceRecord(deps.store, deps.apace, ids, parsed.data, record.raw, ctx);
    return outcome === 'retry_later' ? 'waiting' : 'checked';
  }
  // A young message may still be in its own request's hands.
  if (nowMs - Date.parse(record.receivedAt) < INBOX_REPLAY_AFTER_MS) return 'young';
  const result = await processApaceNotification(deps.store, ids, parsed.data, record.raw, ctx);
  return result.awaitingCheck ? 'waiting' : 'replayed';
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

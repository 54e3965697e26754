import { REDACTED, maskText, redactForLog } from '../../lambdas/commons/redact';
import { orderNumberKey } from '../../lambdas/domain/ap21-origin';
import type { Order, PaymentProvider } from '../../lambdas/domain/order';
import type { Channel, Refund, RefundState } from '../../lambdas/domain/refund';
import { PROVIDER_IDS, providerLabel } from '../../lambdas/providers/registry';
import { StoreScanLimitError, type ReferenceKind, type ScanOptions } from '../../lambdas/store/order-store';
import { orderStory, reviewQueue, type StoryEvent } from '../ops/commands';
import { OpsError, type OpsTarget } from '../ops/target';

/**
 * What the console shows, as data: every read goes through the operator CLI's own functions
 * (tools/ops/commands.ts), so the console and `npm run ops` cannot tell two stories.
 */

/** A scan reads the whole table (docs/design.md §2.1): the console stops after this many pages and says so. */
export const DEFAULT_SCAN: Required<ScanOptions> = { pageSize: 100, maxPages: 50 };

/** Refund refs that are bearer secrets (the customer's claim link): never rendered. */
const SECRET_REFS = new Set(['apaceLink']);

/** A JSON replacer for everything the console sends: secrets by key name, card numbers and e-mails masked, as in the logs. */
export function forBrowser(key: string, value: unknown): unknown {
  if (SECRET_REFS.has(key) && typeof value === 'string') return REDACTED;
  return redactForLog(key, value);
}

export type Lane = 'ap21' | 'relay' | 'provider' | 'customer';

/** One step of the sequence drawn across the lanes: from one lane to another, or a note on one lane (`from === to`). */
export interface Step {
  readonly at: string;
  readonly from: Lane;
  readonly to: Lane;
  readonly label: string;
  readonly actor: string;
  readonly refundId: string;
  readonly change: string;
  readonly note: string;
  readonly inbox?: string;
}

/** Providers that speak for themselves in the timeline (Ap21 has a lane of its own). */
const PROVIDERS = new Set<string>(PROVIDER_IDS.filter((id) => id !== 'ap21'));
/** refund-relay calling the provider. */
const CALLS = new Set(['offer_created', 'offer_cancel_started', 'reversal_submitted', 'attempt_started', 'reversal_status_started', 'offer_delivery_started']);
/** The provider's answer to a call. */
const ANSWERS = new Set(['reversal_succeeded', 'reversal_confirmed', 'reversal_retry', 'offer_cancelled', 'offer_cancel_refused', 'apace_offer_failed']);

/** Where an event sits in the sequence: who spoke to whom. */
export function stepsOf(event: StoryEvent): Step[] {
  const base = { at: event.at, actor: event.actor, refundId: event.refundId, change: event.change, note: event.note };
  const lane: Lane = event.actor === 'ap21' ? 'ap21' : PROVIDERS.has(event.actor) ? 'provider' : 'relay';
  let from: Lane = lane;
  let to: Lane = 'relay';
  if (lane === 'relay') {
    if (CALLS.has(event.what)) to = 'provider';
    else if (ANSWERS.has(event.what)) from = 'provider';
    else if (event.what === 'offer_delivered') to = 'customer';
  }
  const steps: Step[] = [{ ...base, from, to, label: event.what, ...(event.inbox && { inbox: event.inbox }) }];
  // Money reaching the customer: the provider paid.
  if (event.to === 'paid' && event.from !== 'paid') steps.push({ ...base, from: 'provider', to: 'customer', label: 'money to the customer' });
  return steps;
}

const CHANNEL_NAMES: Record<string, string> = { other: 'other provider', reversal: 'card reversal', exchange: 'exchange (Ap21; no money moves)' };
const nameOf = (providerOrChannel: PaymentProvider | Channel): string => CHANNEL_NAMES[providerOrChannel] ?? providerLabel(providerOrChannel);

/** The provider lane's name: every provider this order's refunds went through. */
function providerLane(order: Order): string {
  const names = new Set<string>();
  for (const refund of Object.values(order.refunds)) {
    if (refund.channel === 'reversal') names.add(nameOf(order.payments[refund.paymentId]?.provider ?? 'other'));
    else names.add(nameOf(refund.channel));
  }
  return names.size ? [...names].join(' / ') : 'provider';
}

/** An order at a glance: the ledger, each refund, and its sequence across the lanes. */
export async function orderView(target: OpsTarget, orderId: string) {
  const story = await orderStory(target, orderId);
  const { order } = story;
  return {
    orderId: order.orderId,
    currency: order.currency,
    createdAt: order.createdAt,
    version: order.version,
    dueAt: order.dueAt ?? null,
    origin: order.origin,
    customer: order.customer ?? null,
    lines: Object.entries(order.lines).map(([lineId, line]) => ({ lineId, ...line })),
    payments: Object.entries(order.payments).map(([paymentId, payment]) => ({ paymentId, ...payment })),
    ledgerProblems: story.ledgerProblems,
    refunds: Object.values(order.refunds)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
      .map((refund) => ({ ...refund, provider: refund.channel === 'reversal' ? (order.payments[refund.paymentId]?.provider ?? 'other') : refund.channel })),
    lanes: { ap21: 'Ap21', relay: 'refund-relay', provider: providerLane(order), customer: 'customer' },
    steps: story.events.flatMap(stepsOf),
  };
}

/** One kept inbound message, masked as the logs mask it (one click from its step). */
export async function rawMessage(target: OpsTarget, orderId: string, inbox: string) {
  const record = (await target.store.listInbound(orderId)).find((kept) => `INBOX#${kept.source}#${kept.key}` === inbox);
  if (!record) throw new NotFoundError(`no message ${inbox} kept for order ${orderId} (kept messages expire)`);
  return { source: record.source, key: record.key, receivedAt: record.receivedAt, note: record.note, raw: maskRaw(record.raw ?? '') };
}

const SECRET_ELEMENT = /<([\w:-]*(?:password|secret|token|signature|apikey|authorization)[\w:-]*)(\s[^>]*)?>[^<]*<\/\1>/gi;
const SECRET_PAIR = /((?:password|secret|token|signature|api[-_]?key|authorization)[\w-]*["']?\s*[=:]\s*["']?)[^&\s"',<]+/gi;

/** A raw message for the eye: JSON re-indented with the log redaction, anything else masked and its secret-looking fields blanked. */
export function maskRaw(raw: string): string {
  try {
    return JSON.stringify(JSON.parse(raw), forBrowser, 2);
  } catch {
    return maskText(raw).replace(SECRET_ELEMENT, `<$1$2>${REDACTED}</$1>`).replace(SECRET_PAIR, `$1${REDACTED}`);
  }
}

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

export interface Match {
  readonly orderId: string;
  readonly refundId?: string;
  /** What the query matched. */
  readonly via: string;
}

export interface FindResult {
  readonly query: string;
  readonly matches: Match[];
  /** Orders read by the scan, when one was needed (e-mails and provider references have no index). */
  readonly scanned?: number;
  /** The scan stopped at its bound before the end of the table. */
  readonly scanIncomplete?: boolean;
}

const INDEXED: readonly [ReferenceKind, string, (q: string) => string][] = [
  ['order_number', 'Ap21 order number', orderNumberKey],
  ['refund', 'refund id', (q) => q],
  ['refundid_rma', 'Refundid RMA', (q) => q],
];

/** What of an order a customer or provider may quote, for the scan. */
function scanMatches(order: Order, query: string): Match[] {
  const q = query.toLowerCase();
  const matches: Match[] = [];
  if (order.customer?.email?.toLowerCase() === q) matches.push({ orderId: order.orderId, via: 'customer e-mail' });
  for (const [key, value] of Object.entries(order.origin)) if (value.toLowerCase() === q) matches.push({ orderId: order.orderId, via: `Ap21 ${key}` });
  for (const [paymentId, payment] of Object.entries(order.payments)) {
    if (payment.transactionId?.toLowerCase() === q || payment.reference?.toLowerCase() === q)
      matches.push({ orderId: order.orderId, via: `${nameOf(payment.provider)} transaction of payment ${paymentId}` });
  }
  for (const refund of Object.values(order.refunds)) {
    if (refund.id.toLowerCase() === q) matches.push({ orderId: order.orderId, refundId: refund.id, via: 'refund id' });
    if (refund.source.ref.toLowerCase() === q) matches.push({ orderId: order.orderId, refundId: refund.id, via: `${refund.source.kind} reference` });
    for (const [name, value] of Object.entries(refund.refs)) {
      if (!SECRET_REFS.has(name) && value.toLowerCase() === q) matches.push({ orderId: order.orderId, refundId: refund.id, via: `refund reference ${name}` });
    }
  }
  return matches;
}

/**
 * Finds orders by anything a customer or provider quotes: our order id, the Ap21 order id or number,
 * a refund id or Refundid RMA (by their indexes); failing those, an e-mail or a provider reference by
 * a scan of the table, bounded by `scan` (the answer says when it stopped short).
 */
export async function find(target: OpsTarget, query: string, scan: ScanOptions = DEFAULT_SCAN): Promise<FindResult> {
  const q = query.trim();
  if (!q) return { query: q, matches: [] };
  const matches: Match[] = [];
  for (const [orderId, via] of [
    [q, 'order id'],
    [`ap21-${q}`, 'Ap21 order id'],
  ] as const) {
    if (await target.store.getOrder(orderId)) matches.push({ orderId, via });
  }
  for (const [kind, via, key] of INDEXED) {
    const found = await target.store.findReference(kind, key(q));
    if (found) matches.push({ orderId: found.orderId, ...(found.refundId && { refundId: found.refundId }), via });
  }
  if (matches.length) return { query: q, matches: unique(matches) };
  let scanned = 0;
  try {
    for await (const order of target.store.scanOrders(scan)) {
      scanned++;
      matches.push(...scanMatches(order, q));
    }
  } catch (error) {
    if (!(error instanceof StoreScanLimitError)) throw error;
    return { query: q, matches: unique(matches), scanned, scanIncomplete: true };
  }
  return { query: q, matches: unique(matches), scanned };
}

function unique(matches: Match[]): Match[] {
  const seen = new Set<string>();
  return matches.filter((match) => {
    const key = `${match.orderId}|${match.refundId ?? ''}|${match.via}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The manual-review queue, as `npm run ops -- manual-review` reads it, with each entry's age. */
export async function reviewView(target: OpsTarget, now: Date, scan: ScanOptions = DEFAULT_SCAN) {
  const { found, orders } = await reviewQueue(target, scan);
  const isolations = await target.store.listIsolations('ap21');
  const ageSeconds = (since: string) => Math.max(0, Math.round((now.getTime() - Date.parse(since)) / 1000));
  return {
    scanned: orders,
    refunds: found.map(({ order, refund }) => ({
      orderId: order.orderId,
      refundId: refund.id,
      channel: refund.channel,
      amount: refund.amount,
      attempts: refund.attempts,
      since: refund.updatedAt,
      ageSeconds: ageSeconds(refund.updatedAt),
      reason: refund.reason ?? null,
    })),
    ap21: isolations.map((isolation) => ({
      subject: isolation.subject,
      ap21OrderId: isolation.attributes.ap21OrderId ?? null,
      orderNumber: isolation.attributes.orderNumber ?? null,
      since: isolation.since,
      ageSeconds: ageSeconds(isolation.since),
      reason: isolation.reason,
    })),
  };
}

/** Upper bounds (seconds) of the return→money histogram's buckets; the last is open. */
export const DURATION_BUCKETS = [10, 60, 300, 900, 3600, 6 * 3600, 86_400, 3 * 86_400, 7 * 86_400] as const;
/** Timeline events that are a provider's failure, and its success, for the failure rates. */
const FAILURES = new Set(['reversal_retry', 'review_required', 'apace_offer_failed', 'apace_payout_failed', 'refundid_failed', 'offer_cancel_refused']);
const SUCCESSES = new Set(['reversal_succeeded', 'offer_created', 'apace_paid', 'refundid_refunded', 'offer_cancelled']);
const STATS_DAYS = 14;
const FAILURE_WINDOW_DAYS = 7;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * How it is going: return→money time per channel (a distribution), refunds per state and created
 * per day, and each provider's failure rate over the last week (from the orders' recent timeline).
 */
export async function statsView(target: OpsTarget, now: Date, scan: ScanOptions = DEFAULT_SCAN) {
  const durations: Record<string, number[]> = {};
  const perState: Partial<Record<RefundState, number>> = {};
  const days: string[] = Array.from({ length: STATS_DAYS }, (_, i) => new Date(now.getTime() - (STATS_DAYS - 1 - i) * 86_400_000).toISOString().slice(0, 10));
  const perDay: Record<string, { created: number; paid: number }> = Object.fromEntries(days.map((day) => [day, { created: 0, paid: 0 }]));
  const providers: Record<string, { ok: number; failed: number }> = {};
  const failureSince = new Date(now.getTime() - FAILURE_WINDOW_DAYS * 86_400_000).toISOString();
  let scanned = 0;
  let incomplete = false;
  try {
    for await (const order of target.store.scanOrders(scan)) {
      scanned++;
      for (const refund of Object.values(order.refunds)) tally(refund);
      for (const entry of order.timeline) {
        if (entry.at < failureSince || !entry.refundId) continue;
        const failed = FAILURES.has(entry.event);
        if (!failed && !SUCCESSES.has(entry.event)) continue;
        const refund = order.refunds[entry.refundId];
        const name = !refund ? 'other' : refund.channel === 'reversal' ? (order.payments[refund.paymentId]?.provider ?? 'other') : refund.channel;
        const counts = (providers[nameOf(name)] ??= { ok: 0, failed: 0 });
        if (failed) counts.failed++;
        else counts.ok++;
      }
    }
  } catch (error) {
    if (!(error instanceof StoreScanLimitError)) throw error;
    incomplete = true;
  }
  function tally(refund: Refund) {
    perState[refund.state] = (perState[refund.state] ?? 0) + 1;
    const created = perDay[refund.createdAt.slice(0, 10)];
    if (created) created.created++;
    if (refund.state !== 'paid' || !refund.paidAt) return;
    const paid = perDay[refund.paidAt.slice(0, 10)];
    if (paid) paid.paid++;
    const seconds = Math.max(0, (Date.parse(refund.paidAt) - Date.parse(refund.createdAt)) / 1000);
    (durations[refund.channel] ??= []).push(seconds);
  }
  const returnToMoney = Object.entries(durations).map(([channel, values]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const buckets = [...DURATION_BUCKETS, Infinity].map((upTo, i) => ({
      upToSeconds: Number.isFinite(upTo) ? upTo : null,
      count: sorted.filter((value) => value <= upTo && (i === 0 || value > DURATION_BUCKETS[i - 1]!)).length,
    }));
    return {
      channel,
      count: sorted.length,
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      max: sorted[sorted.length - 1] ?? 0,
      buckets,
    };
  });
  return {
    scanned,
    scanIncomplete: incomplete,
    returnToMoney,
    perState,
    perDay: days.map((day) => ({ day, ...perDay[day]! })),
    providerFailures: Object.entries(providers).map(([provider, { ok, failed }]) => ({ provider, ok, failed, rate: failed / (ok + failed) })),
    failureWindowDays: FAILURE_WINDOW_DAYS,
  };
}

/** For the HTTP layer: what an OpsError from a read means. */
export function notFound(error: unknown): boolean {
  return error instanceof NotFoundError || (error instanceof OpsError && /^no (order|refund) /.test(error.message));
}

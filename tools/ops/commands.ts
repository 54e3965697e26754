import { ledgerViolations, type Order } from '../../lambdas/domain/order';
import {
  RECEIPT_OVERDUE_REASON,
  RECEIPT_WAIVED_REF,
  REFUNDID_OVERDUE_REASON,
  apaceQuietCutoff,
  type Refund,
  type RefundEvent,
  type RefundState,
  type TransitionContext,
} from '../../lambdas/domain/refund';
import { loadApaceOfferDays, offerExpiry } from '../../lambdas/providers/apace/config';
import { reversalRequest } from '../../lambdas/providers/reversal';
import { endRefund, type OperatorAction } from '../../lambdas/services/operator-actions';
import type { ScanOptions, StoredInbound, StoredOrder } from '../../lambdas/store/order-store';
import { stackName } from '../../lib/refund-relay-stack';
import type { StageConfig } from '../../lib/stage-config';
import { ap21Isolations } from './ap21';
import { lineClaims, money, oneLine, refundSummary, table } from './format';
import { OpsError, type OpsTarget, type StackOutputsReader } from './target';

export interface CommandResult {
  readonly text: string;
  readonly json: unknown;
  /** 0 unless the command found something the operator must act on (reconcile's drift). */
  readonly exitCode?: number;
}

async function orderOrFail(target: OpsTarget, orderId: string): Promise<StoredOrder> {
  const order = await target.store.getOrder(orderId);
  if (!order) throw new OpsError(`no order ${JSON.stringify(orderId)} in ${target.name} (table ${target.tableName})`);
  return order;
}

/** Every order holding the refund id, with the refund. */
async function locateRefund(target: OpsTarget, refundId: string): Promise<{ order: StoredOrder; refund: Refund }[]> {
  const found: { order: StoredOrder; refund: Refund }[] = [];
  // A refund id is linked once a provider is to hear it (card reversal); any other refund is found by a scan.
  let orderIds = await target.store.findRefundOrders(refundId);
  if (orderIds.length === 0) {
    orderIds = [];
    for await (const order of target.store.scanOrders()) if (order.refunds[refundId]) orderIds.push(order.orderId);
  }
  for (const orderId of orderIds) {
    const order = await target.store.getOrder(orderId);
    const refund = order?.refunds[refundId];
    if (order && refund) found.push({ order, refund });
  }
  if (found.length === 0) throw new OpsError(`no refund ${JSON.stringify(refundId)} in ${target.name} (table ${target.tableName})`);
  return found;
}

/** One line of an order's story: a timeline entry, or an inbound message kept that changed nothing. */
export interface StoryEvent {
  readonly at: string;
  readonly actor: string;
  readonly what: string;
  readonly refundId: string;
  readonly change: string;
  readonly note: string;
  readonly from?: RefundState;
  readonly to?: RefundState;
  /** Where the raw message is kept (`INBOX#<source>#<key>`), when there is one. */
  readonly inbox?: string;
}

export interface OrderStory {
  readonly order: StoredOrder;
  /** Inbound messages kept that no timeline entry points at (duplicates, late ones). */
  readonly inbound: StoredInbound[];
  /** Every inbound message kept for the order, by its `INBOX#<source>#<key>`. */
  readonly raw: ReadonlyMap<string, StoredInbound>;
  readonly events: StoryEvent[];
  readonly ledgerProblems: string[];
}

/** The data behind `timeline`: the order, its whole timeline and its kept inbound messages, in time order. */
export async function orderStory(target: OpsTarget, orderId: string): Promise<OrderStory> {
  const order = await orderOrFail(target, orderId);
  // The whole timeline (older entries live in audit items); inbound messages a change points at are shown with it.
  const entries = await target.store.readTimeline(orderId);
  const applied = new Set(entries.map((entry) => entry.inbox));
  const kept = await target.store.listInbound(orderId);
  const inboxKey = (record: StoredInbound) => `INBOX#${record.source}#${record.key}`;
  const inbound = kept.filter((record) => !applied.has(inboxKey(record)));
  const events: StoryEvent[] = [
    ...entries.map((entry) => ({
      at: entry.at,
      actor: entry.actor,
      what: entry.event,
      refundId: entry.refundId ?? '',
      change: entry.from || entry.to ? `${entry.from ?? ''} → ${entry.to ?? ''}`.trim() : '',
      note: entry.note ?? '',
      ...(entry.from && { from: entry.from }),
      ...(entry.to && { to: entry.to }),
      ...(entry.inbox && { inbox: entry.inbox }),
    })),
    ...inbound.map((record) => ({
      at: record.receivedAt,
      actor: record.source,
      what: 'inbound (not applied)',
      refundId: '',
      change: '',
      note: record.note,
      inbox: inboxKey(record),
    })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  return { order, inbound, raw: new Map(kept.map((record) => [inboxKey(record), record])), events, ledgerProblems: ledgerViolations(order) };
}

/** `timeline <orderId>`: the ledger, the refunds, and every change and kept inbound message in time order. */
export async function timeline(target: OpsTarget, orderId: string): Promise<CommandResult> {
  const { order, inbound, events, ledgerProblems: problems } = await orderStory(target, orderId);
  const currency = order.currency;
  const text = [
    `Order ${order.orderId} (${currency}), opened ${order.createdAt}, version ${order.version}${order.dueAt ? `, work due ${order.dueAt}` : ''}`,
    '',
    'Lines',
    ...table([
      ['line', 'item', 'purchased', 'reserved', 'refunded', 'available'],
      ...Object.entries(order.lines).map(([lineId, line]) => [
        lineId,
        [line.sku, line.title].filter(Boolean).join(' ') || '-',
        String(line.purchased),
        String(line.reserved),
        String(line.refunded),
        String(line.available),
      ]),
    ]).map((row) => `  ${row}`),
    '',
    'Payments',
    ...table([
      ['payment', 'provider', 'transaction', 'captured', 'reserved', 'refunded'],
      ...Object.entries(order.payments).map(([paymentId, payment]) => [
        paymentId,
        payment.provider,
        payment.transactionId ?? '-',
        money({ minor: payment.capturedMinor, currency }),
        money({ minor: payment.reservedMinor, currency }),
        money({ minor: payment.refundedMinor, currency }),
      ]),
    ]).map((row) => `  ${row}`),
    `  ledger: ${problems.length ? `INCONSISTENT: ${problems.join('; ')}` : 'consistent'}`,
    '',
    'Refunds',
    ...(Object.keys(order.refunds).length === 0
      ? ['  (none)']
      : table([
          ['refund', 'state', 'channel', 'amount', 'lines', 'reason'],
          ...Object.values(order.refunds).map((refund) => [
            refund.id,
            refund.state,
            refund.channel,
            money(refund.amount),
            lineClaims(refund),
            oneLine(refund.reason ?? '', 80),
          ]),
        ]).map((row) => `  ${row}`)),
    '',
    'Timeline',
    ...table([
      ['at', 'by', 'event', 'refund', 'change', 'note'],
      ...events.map((event) => [event.at, event.actor, event.what, event.refundId, event.change, oneLine(event.note)]),
    ]).map((row) => `  ${row}`),
  ].join('\n');
  return { text, json: { order, inbound, ledgerProblems: problems } };
}

/** `refund <refundId>`: the refund wherever it is, with its own part of the order's timeline. */
export async function showRefund(target: OpsTarget, refundId: string): Promise<CommandResult> {
  const found = await locateRefund(target, refundId);
  const timelines = new Map(await Promise.all(found.map(async ({ order }) => [order.orderId, await target.store.readTimeline(order.orderId)] as const)));
  const text = found
    .map(({ order, refund }) =>
      [
        `Refund ${refund.id} of order ${order.orderId}`,
        ...refundSummary(refund).map((row) => `  ${row}`),
        '  timeline',
        ...table(
          timelines
            .get(order.orderId)!
            .filter((entry) => entry.refundId === refundId)
            .map((entry) => [entry.at, entry.actor, entry.event, `${entry.from ?? ''} → ${entry.to ?? ''}`, oneLine(entry.note ?? '')]),
        ).map((row) => `    ${row}`),
      ].join('\n'),
    )
    .join('\n\n');
  return {
    text,
    json: found.map(({ order, refund }) => ({
      orderId: order.orderId,
      refund,
      timeline: timelines.get(order.orderId)!.filter((entry) => entry.refundId === refundId),
    })),
  };
}

/** Refunds in the given states, read from a scan of every order (see `OrderStore.scanOrders`). */
async function scanRefunds(
  target: OpsTarget,
  keep: (refund: Refund, order: Order) => boolean,
  options: ScanOptions,
): Promise<{ found: { order: Order; refund: Refund }[]; orders: number }> {
  const found: { order: Order; refund: Refund }[] = [];
  let orders = 0;
  for await (const order of target.store.scanOrders(options)) {
    orders++;
    for (const refund of Object.values(order.refunds)) if (keep(refund, order)) found.push({ order, refund });
  }
  return { found, orders };
}

/** The refunds in manual review, oldest first, and how many orders were scanned to find them. */
export async function reviewQueue(target: OpsTarget, options: ScanOptions = {}): Promise<{ found: { order: Order; refund: Refund }[]; orders: number }> {
  const queue = await scanRefunds(target, (refund) => refund.state === 'manual_review', options);
  queue.found.sort((a, b) => a.refund.updatedAt.localeCompare(b.refund.updatedAt));
  return queue;
}

/** A Refundid RMA whose outcome Refundid has not sent in time (`refundid_overdue`, docs/design.md §2.5): it waits on, with the reason. */
const refundidOverdue = (refund: Refund) => refund.state === 'refundid_pending' && (refund.reason?.startsWith(REFUNDID_OVERDUE_REASON) ?? false);

/**
 * `manual-review`: every refund an operator must look at, oldest first, with why; then the Refundid
 * RMAs Refundid has not answered in time, and the Ap21 records the poller set aside. One scan.
 */
export async function manualReview(target: OpsTarget, options: ScanOptions = {}, now = new Date()): Promise<CommandResult> {
  const scanned = await scanRefunds(target, (refund) => refund.state === 'manual_review' || refundidOverdue(refund), options);
  const orders = scanned.orders;
  const oldestFirst = (a: { refund: Refund }, b: { refund: Refund }) => a.refund.updatedAt.localeCompare(b.refund.updatedAt);
  const found = scanned.found.filter(({ refund }) => refund.state === 'manual_review').sort(oldestFirst);
  const unanswered = scanned.found.filter(({ refund }) => refundidOverdue(refund)).sort((a, b) => a.refund.createdAt.localeCompare(b.refund.createdAt));
  const header = `${found.length} refund(s) in manual review in ${target.name} (scanned all ${orders} order(s) of ${target.tableName})`;
  const rows = table([
    ['since', 'order', 'refund', 'channel', 'amount', 'attempts', 'reason'],
    ...found.map(({ order, refund }) => [
      refund.updatedAt,
      order.orderId,
      refund.id,
      refund.channel,
      money(refund.amount),
      String(refund.attempts),
      oneLine(refund.reason ?? '(no reason recorded)'),
    ]),
  ]);
  const isolated = await ap21Isolations(target, now);
  const rmaRows = table([
    ['since', 'order', 'refund', 'rma', 'amount', 'reason'],
    ...unanswered.map(({ order, refund }) => [
      refund.createdAt,
      order.orderId,
      refund.id,
      refund.source.ref,
      money(refund.amount),
      oneLine(refund.reason ?? ''),
    ]),
  ]);
  const rmas = unanswered.length
    ? [
        '',
        `${unanswered.length} Refundid RMA(s) Refundid has not said it paid or failed (check each with Refundid; a late answer still applies)`,
        ...rmaRows.map((row) => `  ${row}`),
      ]
    : [];
  return {
    text: [header, ...(found.length ? rows.map((row) => `  ${row}`) : []), ...rmas, ...isolated.text].join('\n'),
    json: [
      ...found.map(({ order, refund }) => ({
        kind: 'refund',
        orderId: order.orderId,
        refundId: refund.id,
        channel: refund.channel,
        amount: refund.amount,
        attempts: refund.attempts,
        since: refund.updatedAt,
        reason: refund.reason ?? null,
      })),
      ...unanswered.map(({ order, refund }) => ({
        kind: 'refundid_unanswered',
        orderId: order.orderId,
        refundId: refund.id,
        rma: refund.source.ref,
        amount: refund.amount,
        since: refund.createdAt,
        reason: refund.reason ?? null,
      })),
      ...isolated.json,
    ],
  };
}

const REDRIVE_EVENT: Partial<Record<Refund['channel'], { event: RefundEvent; next: string }>> = {
  reversal: { event: 'redrive_reversal', next: 'card reversal with a fresh attempt budget' },
  apace: { event: 'redrive_apace', next: 'cancel the Apace offer first, then card reversal, with a fresh attempt budget' },
};

export interface RedriveOptions {
  readonly orderId?: string;
  /** Who asked, for the audit trail. */
  readonly operator: string;
  readonly now?: Date;
}

export interface RedriveCommandOptions extends RedriveOptions {
  /** Why, for the audit trail (the console always asks). */
  readonly reason?: string;
}

/** `redrive <refundId>`: out of manual review with a fresh attempt budget, then wake the dispatcher. */
export async function redrive(target: OpsTarget, refundId: string, options: RedriveCommandOptions): Promise<CommandResult> {
  const { order, refund } = await oneRefund(target, refundId, options.orderId);
  if (refund.state !== 'manual_review')
    throw new OpsError(`refund ${refundId} of order ${order.orderId} is ${refund.state}, not in manual review: nothing to redrive`);
  const plan = REDRIVE_EVENT[refund.channel];
  if (!plan) throw new OpsError(`refund ${refundId} is a ${refund.channel} refund: Refundid settles it, refund-relay has no call to retry`);
  const ctx = { now: (options.now ?? new Date()).toISOString(), claimWindowMs: target.claimWindowMs };
  const outcome = await target.store.applyEvent(
    order.orderId,
    refundId,
    plan.event,
    ctx,
    { actor: 'operator', note: `redriven by ${options.operator}${options.reason?.trim() ? `: ${options.reason.trim()}` : ''}` },
    refund,
  );
  if (!outcome.applied) {
    if (outcome.why === 'apace_recently_verified') {
      const until = new Date(Date.parse(refund.lastVerifiedAt ?? ctx.now) + target.claimWindowMs).toISOString();
      throw new OpsError(
        `Apace was told allow_refund at ${refund.lastVerifiedAt} and may still pay until ${until} (cutoff now ${apaceQuietCutoff(ctx)}); redrive after that`,
      );
    }
    throw new OpsError(`refund ${refundId} changed meanwhile (now ${outcome.refund.state}); look again with: ops refund ${refundId}`);
  }
  if (target.doorbell) await target.doorbell.ring([order.orderId]);
  const woken = target.doorbell
    ? 'the dispatcher was rung through the dispatch queue'
    : 'the local sweeper picks it up within seconds (npm start must be running)';
  return {
    text: `refund ${refundId} of order ${order.orderId}: ${refund.state} → ${outcome.refund.state}; next: ${plan.next}; ${woken}`,
    json: { orderId: order.orderId, refundId, from: refund.state, to: outcome.refund.state, event: plan.event, rung: Boolean(target.doorbell) },
  };
}

export interface WaiveReceiptOptions extends RedriveOptions {
  /** Why the receipt is not awaited (the courier's proof, a store return, …): written to the timeline. */
  readonly reason: string;
}

/**
 * `waive-receipt <refundId> --reason …`: a refund waiting for Ap21 to show its return received
 * (`awaiting_receipt`, docs/design.md §2.9) goes to its channel now, as the receipt would release it:
 * the same transition the intake takes (`return_received`, or `return_received_for_offer` with an
 * offer expiry counted from now), by the operator, recording `refs.receiptWaivedAt` so that no later
 * fallback to the card waits again. One conditional write on the refund as read: a receipt read
 * releasing it meanwhile wins, and the operator is told. Then the dispatcher is woken.
 */
export async function waiveReceipt(target: OpsTarget, refundId: string, options: WaiveReceiptOptions): Promise<CommandResult> {
  const { order, refund } = await oneRefund(target, refundId, options.orderId);
  if (refund.state !== 'awaiting_receipt') {
    const instead =
      refund.state === 'manual_review' && refund.reason?.startsWith(RECEIPT_OVERDUE_REASON)
        ? `its wait ran out and it is in manual review: redrive it (card reversal now) or release it`
        : `only a refund awaiting its return's receipt can have the receipt waived`;
    throw new OpsError(`refund ${refundId} of order ${order.orderId} is ${refund.state}, not awaiting_receipt: ${instead}`);
  }
  const reason = options.reason.trim();
  const now = (options.now ?? new Date()).toISOString();
  const event: RefundEvent = refund.channel === 'apace' ? 'return_received_for_offer' : 'return_received';
  const ctx: TransitionContext = {
    now,
    claimWindowMs: target.claimWindowMs,
    refs: { [RECEIPT_WAIVED_REF]: now },
    // The offer is requested only now: its days count from now, as on a receipt.
    ...(refund.channel === 'apace' && { offerExpiresAt: offerExpiry({ offerDays: target.apaceOfferDays ?? loadApaceOfferDays({}) }, new Date(now)) }),
  };
  const note = `receipt waived by ${options.operator}: ${reason}`;
  const outcome = await target.store.applyEvent(order.orderId, refundId, event, ctx, { actor: 'operator', note }, refund);
  if (!outcome.applied) {
    throw new OpsError(`refund ${refundId} changed meanwhile (now ${outcome.refund.state}): nothing waived; look again with: ops refund ${refundId}`);
  }
  if (target.doorbell) await target.doorbell.ring([order.orderId]);
  const next = refund.channel === 'apace' ? 'the Apace offer is created now' : 'card reversal now';
  const woken = target.doorbell
    ? 'the dispatcher was rung through the dispatch queue'
    : 'the local sweeper picks it up within seconds (npm start must be running)';
  return {
    text: `refund ${refundId} of order ${order.orderId}: ${refund.state} → ${outcome.refund.state} (${event}, receipt waived); next: ${next}; ${woken}`,
    json: { orderId: order.orderId, refundId, from: refund.state, to: outcome.refund.state, event, receiptWaivedAt: now, rung: Boolean(target.doorbell) },
  };
}

export interface EndRefundOptions extends RedriveOptions {
  readonly reason: string;
  /** The operator checked the provider's own record: a reversal once sent did not pay. */
  readonly providerChecked?: boolean;
}

/**
 * `reroute <refundId> --reason …` / `release <refundId> --reason …`: ends a refund in manual review
 * on any channel (lambdas/services/operator-actions.ts), the reason written to its timeline.
 */
export async function endRefundCommand(target: OpsTarget, action: OperatorAction, refundId: string, options: EndRefundOptions): Promise<CommandResult> {
  const { order, refund } = await oneRefund(target, refundId, options.orderId);
  const outcome = await endRefund(target.store, action, {
    orderId: order.orderId,
    refund,
    reason: options.reason,
    operator: options.operator,
    now: (options.now ?? new Date()).toISOString(),
    claimWindowMs: target.claimWindowMs,
    providerChecked: options.providerChecked === true,
  });
  if (!outcome.done) throw new OpsError(`${action} ${refundId} of order ${order.orderId}: ${outcome.why}`);
  const rung = action === 'reroute' && Boolean(target.doorbell);
  if (rung) await target.doorbell!.ring([order.orderId]);
  return {
    text: `refund ${refundId} of order ${order.orderId}: ${refund.state} → ${outcome.refund.state} (${outcome.event}); next: ${outcome.next}`,
    json: { orderId: order.orderId, refundId, from: refund.state, to: outcome.refund.state, event: outcome.event, reason: outcome.refund.reason, rung },
  };
}

async function oneRefund(target: OpsTarget, refundId: string, orderId: string | undefined): Promise<{ order: StoredOrder; refund: Refund }> {
  const found = (await locateRefund(target, refundId)).filter(({ order }) => !orderId || order.orderId === orderId);
  if (found.length === 0) throw new OpsError(`refund ${refundId} is not on order ${orderId}`);
  if (found.length > 1)
    throw new OpsError(`refund id ${refundId} is on orders ${found.map(({ order }) => order.orderId).join(', ')}: name one with --order <orderId>`);
  return found[0]!;
}

/**
 * `egress-ips --stage <s>`: the addresses Ap21 and the providers must allowlist, as the deployed
 * stack read them from its Elastic IP allocations (output EgressIps): never typed by hand.
 */
export async function egressIps(config: StageConfig, readOutputs: StackOutputsReader): Promise<CommandResult> {
  const pinned = config.egress.elasticIpAllocationIds;
  const stack = stackName(config.stage);
  const where = `output EgressIps of stack ${stack} in ${config.region} (aws cloudformation describe-stacks --stack-name ${stack} --region ${config.region} --query "Stacks[0].Outputs[?OutputKey=='EgressIps'].OutputValue" --output text)`;
  const before = pinned
    ? `; before the first deploy, read the pinned allocations' addresses: aws ec2 describe-addresses --region ${config.region} --allocation-ids ${pinned.join(' ')}`
    : '';
  let outputs: Readonly<Record<string, string>>;
  try {
    outputs = await readOutputs(config);
  } catch (error) {
    throw new OpsError(`the egress IPs of stage ${config.stage} are the ${where}${before}. Reading it failed: ${(error as Error).message}`);
  }
  const ips = (outputs.EgressIps ?? '').split(',').filter(Boolean);
  if (ips.length === 0) throw new OpsError(`stack ${stack} has no EgressIps output yet; is the stage deployed? They will be the ${where}${before}`);
  const source = pinned
    ? `the Elastic IP allocations pinned in lib/stage-config.ts (${pinned.join(', ')})`
    : `allocated and retained by stack ${stack}; pin their allocation ids in lib/stage-config.ts to keep them across a rebuild`;
  return {
    text: [`Egress IPs of ${config.stage} (${source}):`, ...ips.map((ip) => `  ${ip}`)].join('\n'),
    json: { stage: config.stage, source: pinned ? 'pinned-allocations' : 'stack-allocated', ips },
  };
}

export type ProviderView = 'paid' | 'pending' | 'failed' | 'not_paid' | 'unknown';

export interface ReconcileFinding {
  readonly orderId: string;
  readonly refundId: string;
  readonly channel: Refund['channel'];
  readonly ours: RefundState;
  readonly provider: ProviderView;
  readonly detail: string;
  /** `drift`: the books and the provider disagree; `unconfirmed`: the provider cannot say. */
  readonly verdict: 'agrees' | 'drift' | 'unconfirmed';
}

export interface ReconcileOptions {
  /** Refunds paid or changed since this time (UTC ISO). */
  readonly since: string;
  /** Refunds asked about at most. */
  readonly limit: number;
  readonly concurrency?: number;
  readonly scan?: ScanOptions;
}

/** Refunds whose money may have moved at a provider: paid ones, and ones a provider was asked to pay. */
const ASKED_STATES: ReadonlySet<RefundState> = new Set(['paid', 'offered', 'offer_cancelling', 'reversal_submitted', 'reversal_pending', 'manual_review']);

async function providerView(target: OpsTarget, order: Order, refund: Refund): Promise<{ provider: ProviderView; detail: string } | undefined> {
  if (refund.channel === 'apace') {
    const apaceRefundId = refund.refs.apaceRefundId;
    if (!apaceRefundId) return refund.state === 'paid' ? { provider: 'unknown', detail: 'paid through Apace but no Apace refund id is recorded' } : undefined;
    if (!target.apace) return { provider: 'unknown', detail: 'APACE_API_URL is not set for this target' };
    const status = await target.apace.status(apaceRefundId);
    if (status.kind === 'not_found') return { provider: 'not_paid', detail: `Apace has no refund ${apaceRefundId}` };
    if (status.kind === 'failed') return { provider: 'unknown', detail: `Apace status unavailable: ${status.reason}` };
    const byPayout = { none: 'not_paid', pending: 'paid', processed: 'paid', failed: 'failed' } as const;
    return { provider: byPayout[status.payout], detail: `Apace payout ${status.payout}` };
  }
  if (refund.channel !== 'reversal') return undefined;
  // A reversal never submitted has moved no money; its provider knows nothing of it yet.
  if (refund.state === 'reversal_pending' && refund.attempts === 0) return undefined;
  const provider = order.payments[refund.paymentId]?.provider ?? 'other';
  const connector = target.reversals[provider];
  if (!connector) return { provider: 'unknown', detail: `no ${provider} connector configured for this target` };
  const providerRef = refund.refs.providerRef;
  const outcome = await connector.status({ ...reversalRequest(order, refund), ...(providerRef && { providerRef }) });
  const byKind = { succeeded: 'paid', pending: 'pending', failed: 'failed', unknown: 'unknown' } as const;
  return { provider: byKind[outcome.kind], detail: outcome.detail };
}

function verdictOf(ours: RefundState, provider: ProviderView): ReconcileFinding['verdict'] {
  if (provider === 'unknown') return 'unconfirmed';
  if (ours === 'paid') return provider === 'paid' ? 'agrees' : 'drift';
  return provider === 'paid' ? 'drift' : 'agrees';
}

/**
 * `reconcile`: asks each provider about refunds it was involved in since a time, and reports where
 * its view and ours disagree (we booked paid, it says failed or never paid; it paid, we did not).
 * Read-only: status queries only, bounded by `limit`.
 */
export async function reconcile(target: OpsTarget, options: ReconcileOptions): Promise<CommandResult> {
  const { found, orders } = await scanRefunds(
    target,
    (refund) => refund.channel !== 'refundid' && ASKED_STATES.has(refund.state) && (refund.paidAt ?? refund.updatedAt) >= options.since,
    options.scan ?? {},
  );
  found.sort((a, b) => (b.refund.paidAt ?? b.refund.updatedAt).localeCompare(a.refund.paidAt ?? a.refund.updatedAt));
  const checked = found.slice(0, options.limit);
  const findings: ReconcileFinding[] = [];
  let next = 0;
  const worker = async () => {
    while (next < checked.length) {
      const { order, refund } = checked[next++]!;
      let view: { provider: ProviderView; detail: string } | undefined;
      try {
        view = await providerView(target, order, refund);
      } catch (error) {
        view = { provider: 'unknown', detail: `status query failed: ${(error as Error).message}` };
      }
      if (!view) continue;
      findings.push({
        orderId: order.orderId,
        refundId: refund.id,
        channel: refund.channel,
        ours: refund.state,
        ...view,
        verdict: verdictOf(refund.state, view.provider),
      });
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  findings.sort((a, b) => a.verdict.localeCompare(b.verdict) || a.orderId.localeCompare(b.orderId));
  const count = (verdict: ReconcileFinding['verdict']) => findings.filter((finding) => finding.verdict === verdict).length;
  const drift = count('drift');
  const shown = findings.filter((finding) => finding.verdict !== 'agrees');
  const text = [
    `Reconciled ${findings.length} refund(s) changed since ${options.since} in ${target.name} (scanned ${orders} order(s); ${found.length} candidate(s), limit ${options.limit}):`,
    `  agrees ${count('agrees')}, drift ${drift}, unconfirmed ${count('unconfirmed')}`,
    ...(shown.length
      ? table([
          ['verdict', 'order', 'refund', 'channel', 'ours', 'provider', 'detail'],
          ...shown.map((f) => [f.verdict.toUpperCase(), f.orderId, f.refundId, f.channel, f.ours, f.provider, oneLine(f.detail, 120)]),
        ]).map((row) => `  ${row}`)
      : []),
  ].join('\n');
  return { text, json: { since: options.since, scannedOrders: orders, candidates: found.length, findings }, exitCode: drift > 0 ? 2 : 0 };
}

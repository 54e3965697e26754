import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/commons/clients/dynamodb';
import { withDeadline } from '../../lambdas/commons/deadline';
import type { PaymentProvider } from '../../lambdas/domain/order';
import { refundDueAt, type Channel, type RefundState } from '../../lambdas/domain/refund';
import type { ReversalConnector, ReversalOutcome } from '../../lambdas/providers/reversal';
import type { ApaceOffers, OfferCancelResult, OfferCreateResult, OfferEmailResult, OfferStatusResult } from '../../lambdas/services/apace-offers';
import { Dispatcher, type CallBudget } from '../../lambdas/services/dispatcher';
import type { RetryPolicy } from '../../lambdas/services/retry-policy';
import { DynamoOrderStore } from '../../lambdas/store/dynamodb-order-store';
import { orderKey } from '../../lambdas/store/keys';
import { startTestDynamo, type TestDynamo } from '../support/dynamo';
import { DAY_MS, demoOrder, demoOrderWithRefund } from '../support/fixtures';

/**
 * The dispatcher's decisions (lambdas/services/dispatcher.ts; docs/design.md §2.2–2.6, §2.9) as a
 * table: a refund as stored and what its provider answers → the state it ends in, the provider
 * calls made, and when it is next due. Each row runs the real Dispatcher over dynalite with
 * scripted in-process ports (a card-reversal connector and Apace's offers).
 */
const NOW = Date.UTC(2026, 5, 1, 10, 0, 0);
const at = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();
const POLICY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 60_000, leaseMs: 30_000, syncDelayMs: 5_000 };
/** Full jitter at one half: the first retry comes after half the base delay. */
const RANDOM = () => 0.5;
const WAIT_MS = 30 * DAY_MS;

interface Script {
  readonly submit?: ReversalOutcome;
  readonly reversalStatus?: ReversalOutcome;
  readonly create?: OfferCreateResult;
  readonly cancel?: OfferCancelResult;
  readonly offerStatus?: OfferStatusResult;
}

interface Given {
  readonly route: 'apace' | 'reversal';
  /** Set over the refund as created (as earlier dispatcher runs would have left it). */
  readonly state?: RefundState;
  readonly attempts?: number;
  /** Relative to NOW: a lease or a follow-up time; null: none. */
  readonly nextAttemptIn?: number | null;
  readonly offerExpiresIn?: number;
  readonly refs?: Record<string, string>;
  /** When the return was seen, relative to NOW (the refund's createdAt). */
  readonly seenAgo?: number;
  readonly provider?: PaymentProvider;
}

interface Row {
  readonly name: string;
  readonly given: Given;
  readonly answers?: Script;
  /** The stage holds EPG card reversals until Ap21 shows the return received (AP21_PAY_ON_RECEIPT=addon_payments). */
  readonly payOnReceipt?: boolean;
  /** The invocation has too little time left for an EPG call. */
  readonly tightBudget?: boolean;
  readonly then: {
    readonly state: RefundState;
    readonly channel?: Channel;
    readonly calls: readonly string[];
    /** Relative to NOW; null: not due again (nothing for refund-relay to do). */
    readonly dueIn: number | null;
    readonly reason?: RegExp;
    readonly handedBack?: true;
  };
}

const ok: ReversalOutcome = { kind: 'succeeded', providerRef: 'epg-1', detail: 'refunded' };
const created: OfferCreateResult = { kind: 'created', apaceRefundId: 'apace-1', link: 'https://apace.example/r/1', recovered: false };
const OFFER_DAYS = 10 * DAY_MS;
const offered = (expiresIn: number): Given => ({ route: 'apace', state: 'offered', offerExpiresIn: expiresIn, refs: { apaceRefundId: 'apace-1' } });

/** Ap21 was seen showing the refund's return refunded at the till a minute ago (docs/design.md §2.3). */
const MARKED = {
  settledElsewhere: 'Ap21 now shows return R1 (1) already refunded (by Ap21) while its card reversal was in flight',
  settledElsewhereAt: at(-60_000),
};

const ROWS: readonly Row[] = [
  // Card reversal: one submit, its answer decides.
  { name: 'submit succeeded', given: { route: 'reversal' }, answers: { submit: ok }, then: { state: 'paid', calls: ['submit'], dueIn: null } },
  {
    name: 'submit pending: asked again after the sync delay',
    given: { route: 'reversal' },
    answers: { submit: { kind: 'pending', detail: 'accepted' } },
    then: { state: 'reversal_submitted', calls: ['submit'], dueIn: POLICY.syncDelayMs },
  },
  {
    name: 'submit failed, retryable: back to pending with backoff',
    given: { route: 'reversal' },
    answers: { submit: { kind: 'failed', retryable: true, detail: 'HTTP 503' } },
    then: { state: 'reversal_pending', calls: ['submit'], dueIn: 500 },
  },
  {
    name: 'submit failed, permanent: manual review',
    given: { route: 'reversal' },
    answers: { submit: { kind: 'failed', retryable: false, detail: 'card closed' } },
    then: { state: 'manual_review', calls: ['submit'], dueIn: null, reason: /provider refused the reversal: card closed/ },
  },
  {
    name: 'submit unknown: followed up with backoff',
    given: { route: 'reversal' },
    answers: { submit: { kind: 'unknown', detail: 'timeout' } },
    then: { state: 'reversal_submitted', calls: ['submit'], dueIn: 500 },
  },
  {
    name: 'max attempts spent: manual review without a call',
    given: { route: 'reversal', attempts: 3 },
    then: { state: 'manual_review', calls: [], dueIn: null, reason: /after 3 attempts/ },
  },
  {
    name: 'a submitted reversal whose lease ran out: status asked, succeeded',
    given: { route: 'reversal', state: 'reversal_submitted', attempts: 1, nextAttemptIn: -1 },
    answers: { reversalStatus: ok },
    then: { state: 'paid', calls: ['status'], dueIn: null },
  },
  {
    name: 'lease held by another dispatcher: left alone until it runs out',
    given: { route: 'reversal', state: 'reversal_submitted', attempts: 1, nextAttemptIn: POLICY.leaseMs },
    then: { state: 'reversal_submitted', calls: [], dueIn: POLICY.leaseMs },
  },
  {
    name: 'call not fitting the invocation: handed back untouched',
    given: { route: 'reversal' },
    tightBudget: true,
    then: { state: 'reversal_pending', calls: [], dueIn: -60_000, handedBack: true },
  },
  {
    name: 'no connector for the payment provider: manual review',
    given: { route: 'reversal', provider: 'paypro' },
    then: { state: 'manual_review', calls: [], dueIn: null, reason: /no card-reversal connector for payment provider paypro/ },
  },
  // Ap21 showed the return settled elsewhere (refs.settledElsewhere, docs/design.md §2.3): the card is never asked again.
  {
    name: 'marked settled elsewhere before it was sent: manual review without a call',
    given: { route: 'reversal', refs: MARKED },
    then: { state: 'manual_review', calls: [], dueIn: null, reason: /already refunded \(by Ap21\).*\(card reversal not submitted again\)/ },
  },
  {
    name: 'marked settled elsewhere, an operator sent it on since (redrive): reversed',
    given: { route: 'reversal', refs: { ...MARKED, receiptWaivedAt: at(0), settledElsewhereWaived: MARKED.settledElsewhereAt } },
    answers: { submit: ok },
    then: { state: 'paid', calls: ['submit'], dueIn: null },
  },
  {
    name: 'marked while submitted, its lease ran out, the provider has no record: manual review, not submitted again',
    given: { route: 'reversal', state: 'reversal_submitted', attempts: 1, nextAttemptIn: -1, refs: MARKED },
    answers: { reversalStatus: { kind: 'unknown', detail: 'no such refund' }, submit: ok },
    then: { state: 'manual_review', calls: ['status'], dueIn: null, reason: /not submitted again: no such refund/ },
  },
  {
    name: 'marked while submitted, the provider reports it paid: booked paid',
    given: { route: 'reversal', state: 'reversal_submitted', attempts: 1, nextAttemptIn: -1, refs: MARKED },
    answers: { reversalStatus: ok },
    then: { state: 'paid', calls: ['status'], dueIn: null },
  },
  {
    name: 'marked while submitted, the provider still processing: asked again after the sync delay',
    given: { route: 'reversal', state: 'reversal_submitted', attempts: 1, nextAttemptIn: -1, refs: MARKED },
    answers: { reversalStatus: { kind: 'pending', detail: 'processing' } },
    then: { state: 'reversal_submitted', calls: ['status'], dueIn: POLICY.syncDelayMs },
  },
  // Apace.
  {
    name: 'offer created: due at its expiry',
    given: { route: 'apace', offerExpiresIn: OFFER_DAYS },
    answers: { create: created },
    then: { state: 'offered', channel: 'apace', calls: ['create'], dueIn: OFFER_DAYS },
  },
  {
    name: 'offer create failed, retryable: backoff',
    given: { route: 'apace', offerExpiresIn: OFFER_DAYS },
    answers: { create: { kind: 'failed', retryable: true, reason: 'HTTP 502' } },
    then: { state: 'offer_pending', channel: 'apace', calls: ['create'], dueIn: 500 },
  },
  {
    name: 'offer create refused: cancel first, then the card',
    given: { route: 'apace', offerExpiresIn: OFFER_DAYS },
    answers: { create: { kind: 'failed', retryable: false, reason: 'invalid card' }, cancel: { kind: 'not_found' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['create', 'cancel', 'submit'], dueIn: null },
  },
  {
    name: 'offer expired before Apace accepted it: cancel first, then the card',
    given: { route: 'apace', offerExpiresIn: -1 },
    answers: { cancel: { kind: 'not_found' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['cancel', 'submit'], dueIn: null },
  },
  {
    name: 'offered and expired: its status, the cancel, then the card',
    given: offered(-1),
    answers: { offerStatus: { kind: 'found', payout: 'none' }, cancel: { kind: 'cancelled' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['offer status', 'cancel', 'submit'], dueIn: null },
  },
  {
    name: 'offered and expired, but Apace refuses the cancel: its payout is under way',
    given: offered(-1),
    answers: { offerStatus: { kind: 'found', payout: 'none' }, cancel: { kind: 'refused', payout: 'pending', reason: 'payout started' } },
    then: { state: 'paid', channel: 'apace', calls: ['offer status', 'cancel'], dueIn: 3_600_000 },
  },
  {
    name: 'offered and live: not due before its expiry',
    given: offered(DAY_MS),
    then: { state: 'offered', channel: 'apace', calls: [], dueIn: DAY_MS },
  },
  {
    name: 'offered and expired, Apace reports its payout failed: the card without a cancel',
    given: offered(-1),
    answers: { offerStatus: { kind: 'found', payout: 'failed' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['offer status', 'submit'], dueIn: null },
  },
  // Pay on receipt (docs/design.md §2.9).
  {
    name: 'fallback to a card held until receipt: waits for the receipt, counted from when the return was seen',
    given: { ...offered(-1), seenAgo: 11 * DAY_MS },
    payOnReceipt: true,
    answers: { offerStatus: { kind: 'found', payout: 'none' }, cancel: { kind: 'cancelled' } },
    then: { state: 'awaiting_receipt', channel: 'reversal', calls: ['offer status', 'cancel'], dueIn: WAIT_MS - 11 * DAY_MS },
  },
  {
    name: 'fallback to a card held until receipt, the return already seen received: reversed at once',
    given: { ...offered(-1), seenAgo: 11 * DAY_MS, refs: { apaceRefundId: 'apace-1', returnReceivedAt: at(-DAY_MS) } },
    payOnReceipt: true,
    answers: { offerStatus: { kind: 'found', payout: 'none' }, cancel: { kind: 'cancelled' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['offer status', 'cancel', 'submit'], dueIn: null },
  },
  {
    name: 'fallback to a card held until receipt that an operator sent on (redrive): reversed at once',
    given: { ...offered(-1), seenAgo: 11 * DAY_MS, refs: { apaceRefundId: 'apace-1', receiptWaivedAt: at(-DAY_MS) } },
    payOnReceipt: true,
    answers: { offerStatus: { kind: 'found', payout: 'none' }, cancel: { kind: 'cancelled' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['offer status', 'cancel', 'submit'], dueIn: null },
  },
  {
    name: 'fallback to a card held until receipt whose wait is already over: manual review',
    given: { route: 'apace', offerExpiresIn: -1, seenAgo: 31 * DAY_MS },
    payOnReceipt: true,
    answers: { cancel: { kind: 'not_found' } },
    then: { state: 'manual_review', channel: 'reversal', calls: ['cancel'], dueIn: null, reason: /^return not received in Ap21 within/ },
  },
  {
    name: 'fallback to a card the stage does not hold: reversed at once',
    given: { route: 'apace', offerExpiresIn: -1, seenAgo: 11 * DAY_MS },
    answers: { cancel: { kind: 'not_found' }, submit: ok },
    then: { state: 'paid', channel: 'reversal', calls: ['cancel', 'submit'], dueIn: null },
  },
  {
    name: 'an Apace payout failed: the card, held until receipt, waits',
    given: { ...offered(-1), seenAgo: 11 * DAY_MS },
    payOnReceipt: true,
    answers: { offerStatus: { kind: 'found', payout: 'failed' } },
    then: { state: 'awaiting_receipt', channel: 'reversal', calls: ['offer status'], dueIn: WAIT_MS - 11 * DAY_MS },
  },
  {
    name: 'a wait for the receipt that ran out: manual review without a call',
    given: { route: 'reversal', state: 'awaiting_receipt', nextAttemptIn: -1, seenAgo: WAIT_MS },
    payOnReceipt: true,
    then: { state: 'manual_review', channel: 'reversal', calls: [], dueIn: null, reason: /^return not received in Ap21 within/ },
  },
];

let dynamo: TestDynamo;
let db: DynamoDBDocumentClient;
let store: DynamoOrderStore;
beforeAll(async () => {
  dynamo = await startTestDynamo('dispatcher-table');
  db = createDocumentClient(dynamo.endpoint);
  store = new DynamoOrderStore(db, dynamo.tableName);
});
afterAll(() => dynamo.close());

/** Answers each call from the row's script, once, and records it; a call the row did not script fails the row. */
function scripted(script: Script, calls: string[]): { epg: ReversalConnector; apace: ApaceOffers } {
  const answer = <T>(call: string, value: T | undefined): Promise<T> => {
    calls.push(call);
    if (value === undefined) throw new Error(`unscripted call: ${call}`);
    return Promise.resolve(value);
  };
  return {
    epg: {
      provider: 'addon_payments',
      submit: () => answer('submit', script.submit),
      status: () => answer('status', script.reversalStatus),
    },
    apace: {
      create: () => answer('create', script.create),
      cancel: () => answer('cancel', script.cancel),
      status: () => answer('offer status', script.offerStatus),
      sendOfferEmail: () => answer<OfferEmailResult>('send email', undefined),
    },
  };
}

/** The order with one refund, stored as `given` says (the refund written over as earlier runs would have left it). */
async function seed(orderId: string, given: Given): Promise<string> {
  const refundId = `${orderId}-r1`;
  const createdAt = at(-(given.seenAgo ?? 60_000));
  const provider = given.provider ?? 'addon_payments';
  const { payments } = demoOrder(orderId);
  await demoOrderWithRefund(
    store,
    orderId,
    {
      route: given.route,
      ...(given.route === 'apace' && { offerExpiresAt: at(given.offerExpiresIn ?? OFFER_DAYS) }),
      source: { kind: 'ap21_return', ref: refundId },
    },
    { now: createdAt, order: { payments: payments.map((payment) => ({ ...payment, provider })) } },
  );
  const fields: Record<string, unknown> = {
    ...(given.state && { state: given.state }),
    ...(given.attempts !== undefined && { attempts: given.attempts }),
    ...(given.refs && { refs: given.refs }),
    ...(given.nextAttemptIn !== undefined && given.nextAttemptIn !== null && { nextAttemptAt: at(given.nextAttemptIn) }),
  };
  const names = Object.keys(fields);
  if (names.length === 0) return refundId;
  await db.send(
    new UpdateCommand({
      TableName: dynamo.tableName,
      Key: orderKey(orderId),
      UpdateExpression: `SET ${names.map((_name, i) => `refunds.#id.#f${i} = :v${i}`).join(', ')}`,
      ExpressionAttributeNames: { '#id': refundId, ...Object.fromEntries(names.map((name, i) => [`#f${i}`, name])) },
      ExpressionAttributeValues: Object.fromEntries(names.map((name, i) => [`:v${i}`, fields[name]])),
    }),
  );
  return refundId;
}

describe('the dispatcher decides, per refund as stored and provider answer', () => {
  it.each(ROWS.map((row, i) => [row.name, row, i] as const))('%s', async (_name, row, i) => {
    const orderId = `table-${i}`;
    const refundId = await seed(orderId, row.given);
    const calls: string[] = [];
    const { epg, apace } = scripted(row.answers ?? {}, calls);
    const callBudget: CallBudget = { timeoutMs: { addon_payments: 600_000, apace: 1_000 }, marginMs: 100 };
    const dispatcher = new Dispatcher({
      store,
      apace,
      reversals: { addon_payments: epg },
      policy: POLICY,
      claimWindowMs: 0,
      callbackUrls: () => Promise.resolve({ verificationUrl: 'https://relay.example/v', notificationUrl: 'https://relay.example/n' }),
      ...(row.payOnReceipt && { receipt: { payOnReceipt: new Set(['addon_payments'] as const), waitMs: WAIT_MS } }),
      ...(row.tightBudget && { callBudget }),
      now: () => NOW,
      random: RANDOM,
    });
    const run = () => dispatcher.processOrder(orderId);
    const steps = row.tightBudget ? await withDeadline(Date.now() + 5_000, run) : await run();

    const after = await store.getOrder(orderId);
    const refund = after!.refunds[refundId]!;
    expect(calls).toEqual(row.then.calls);
    expect(refund).toMatchObject({ state: row.then.state, ...(row.then.channel && { channel: row.then.channel }) });
    const due = row.then.dueIn === null ? undefined : at(row.then.dueIn);
    expect(refundDueAt(refund)).toBe(due);
    expect(after!.dueAt).toBe(due);
    if (row.then.reason) expect(refund.reason).toMatch(row.then.reason);
    expect(steps.some((step) => step.handedBack)).toBe(row.then.handedBack ?? false);
  });
});

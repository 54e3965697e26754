import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { InvalidRefundError, OrderNotFoundError, RefundConflictError, RefundNotFoundError, UnitsUnavailableError } from '../../lambdas/domain/errors';
import { addRefund, applyRefundEvent, openOrder, recordVerification, type NewRefund, type Order } from '../../lambdas/domain/order';
import { RECEIPT_OVERDUE_REASON, REFUND_EVENTS, ruleFor, type Channel, type RefundEvent, type TransitionContext } from '../../lambdas/domain/refund';
import { DynamoOrderStore } from '../../lambdas/store/dynamodb-order-store';
import { startTestDynamo, type TestDynamo } from '../support/dynamo';
import { demoOrder } from '../support/fixtures';

let dynamo: TestDynamo;
let store: DynamoOrderStore;
let calls = 0;

beforeAll(async () => {
  dynamo = await startTestDynamo('store-test');
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'ap-southeast-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  client.middlewareStack.add(
    (next) => async (args) => {
      calls++;
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  store = new DynamoOrderStore(DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }), dynamo.tableName);
});
afterAll(() => dynamo.close());

const T = (seconds: number) => new Date(Date.UTC(2026, 2, 1, 10, 0, seconds)).toISOString();
const refundSpec = (refundId: string, overrides: Partial<NewRefund> = {}): NewRefund => ({
  refundId,
  lines: { '1': 1 },
  paymentId: 'pay-1',
  amount: { minor: 5990, currency: 'AUD' },
  route: 'reversal',
  source: { kind: 'ap21_return', ref: refundId },
  ...overrides,
});

describe(`DynamoOrderStore against ${process.env.TEST_DYNAMO === 'local' ? 'DynamoDB Local' : 'dynalite'}`, () => {
  it('opens an order once; a second put of the same order changes nothing', async () => {
    const order = openOrder(demoOrder('s-open'), T(0));
    expect(await store.putOrder(order)).toEqual({ created: true });
    expect(await store.putOrder({ ...order, currency: 'NZD' })).toEqual({ created: false });
    expect((await store.getOrder('s-open'))?.currency).toBe('AUD');
  });

  it('creates a refund and its reservation in one conditional write (its id is linked by the dispatcher, its one owner)', async () => {
    await store.putOrder(openOrder(demoOrder('s-create'), T(0)));
    calls = 0;
    const { refund, created } = await store.createRefund('s-create', refundSpec('r1'), T(1), { actor: 'ap21' });
    expect(calls).toBe(1);
    expect(await store.findRefundOrders('r1')).toEqual([]);
    expect(created).toBe(true);
    expect(refund).toMatchObject({ state: 'reversal_pending', nextAttemptAt: T(1) });
    const order = (await store.getOrder('s-create'))!;
    expect(order.lines['1']).toMatchObject({ reserved: 1, available: 1 });
    expect(order.dueAt).toBe(T(1));
    expect(order.timeline.at(-1)).toMatchObject({ event: 'refund_created', refundId: 'r1', to: 'reversal_pending', actor: 'ap21' });
  });

  it('opens a new order with its first refund in one write; on an open order it writes nothing and hands the order back where the engine can', async () => {
    calls = 0;
    const opened = await store.openOrderWithRefund(openOrder(demoOrder('s-owr'), T(0)), refundSpec('owr-1'), T(1), { actor: 'ap21', note: 'Ap21 return' });
    expect(calls).toBe(1);
    expect(opened).toMatchObject({ opened: true, refund: { state: 'reversal_pending', nextAttemptAt: T(1) } });
    const order = (await store.getOrder('s-owr'))!;
    expect(order).toMatchObject({ dueAt: T(1), lines: { '1': { reserved: 1, available: 1 } }, payments: { 'pay-1': { reservedMinor: 5990 } } });
    expect(order.timeline.map((entry) => entry.event)).toEqual(['order_opened', 'refund_created']);

    calls = 0;
    const again = await store.openOrderWithRefund(openOrder(demoOrder('s-owr'), T(2)), refundSpec('owr-2'), T(2), { actor: 'ap21' });
    expect(calls).toBe(1);
    expect(again.opened).toBe(false);
    // DynamoDB (and DynamoDB Local) return the item that refused the put; dynalite returns nothing (docs/design.md §2.1).
    if (dynamo.engine === 'dynamodb-local')
      expect(again).toMatchObject({ existing: { version: order.version, refunds: { 'owr-1': { state: 'reversal_pending' } } } });
    else expect(again).toEqual({ opened: false });
    expect((await store.getOrder('s-owr'))!.version).toBe(order.version);
  });

  it("folds the outbox reschedule into a transition's write while the order is at the caller's version, and leaves it out when not", async () => {
    await store.putOrder(openOrder(demoOrder('s-fold'), T(0)));
    const { refund } = await store.createRefund('s-fold', refundSpec('fold-1'), T(1), { actor: 'ap21' });
    const version = (await store.getOrder('s-fold'))!.version;
    calls = 0;
    const claimed = await store.applyEvent(
      's-fold',
      'fold-1',
      'reversal_submitted',
      { now: T(2), claimWindowMs: 0, nextAttemptAt: T(120) },
      { actor: 'dispatcher' },
      refund,
      {
        version,
        dueAt: T(120),
      },
    );
    expect(calls).toBe(1);
    expect(claimed).toMatchObject({ applied: true, scheduled: true });
    expect((await store.getOrder('s-fold'))!).toMatchObject({ version: version + 1, dueAt: T(120) });
    // Someone else changed the order meanwhile: the transition applies, the stale due time does not.
    await store.recordInbound('s-fold', { source: 'apace', key: 'x', raw: '{}', note: 'n' }, T(3));
    await store.createRefund('s-fold', refundSpec('fold-2', { lines: { '2': 1 }, amount: { minor: 4500, currency: 'AUD' } }), T(3), { actor: 'ap21' });
    const paid = await store.applyEvent('s-fold', 'fold-1', 'reversal_succeeded', { now: T(4), claimWindowMs: 0 }, { actor: 'dispatcher' }, claimed.refund, {
      version: version + 1,
      dueAt: undefined,
    });
    expect(paid).toMatchObject({ applied: true, scheduled: false, refund: { state: 'paid' } });
    expect((await store.getOrder('s-fold'))!.dueAt).toBe(T(3));
  });

  it('explains refusals precisely: retried create, conflicting id, missing units, unknown order, bad shape', async () => {
    await store.putOrder(openOrder(demoOrder('s-refuse'), T(0)));
    await store.createRefund('s-refuse', refundSpec('refuse-r1', { lines: { '1': 2 }, amount: { minor: 11980, currency: 'AUD' } }), T(1), { actor: 'ap21' });
    expect(
      await store.createRefund('s-refuse', refundSpec('refuse-r1', { lines: { '1': 2 }, amount: { minor: 11980, currency: 'AUD' } }), T(2), { actor: 'ap21' }),
    ).toMatchObject({ created: false, refund: { createdAt: T(1) } });
    await expect(store.createRefund('s-refuse', refundSpec('refuse-r1'), T(2), { actor: 'ap21' })).rejects.toThrow(RefundConflictError);
    await expect(store.createRefund('s-refuse', refundSpec('refuse-r2'), T(2), { actor: 'ap21' })).rejects.toThrow(
      'line 1: 1 unit(s) asked, 0 not yet refunded or in flight',
    );
    await expect(
      store.createRefund('s-refuse', refundSpec('refuse-r3', { lines: { '2': 1 }, amount: { minor: 99999, currency: 'AUD' } }), T(2), { actor: 'ap21' }),
    ).rejects.toThrow(UnitsUnavailableError);
    await expect(store.createRefund('s-refuse', refundSpec('refuse-r4', { lines: { '9': 1 } }), T(2), { actor: 'ap21' })).rejects.toThrow(InvalidRefundError);
    await expect(store.createRefund('nope', refundSpec('refuse-r5'), T(2), { actor: 'ap21' })).rejects.toThrow(OrderNotFoundError);
    await expect(store.createRefund('s-refuse', refundSpec('refuse-r6', { lines: { '2': -1 } }), T(2), { actor: 'ap21' })).rejects.toThrow(InvalidRefundError);
    await expect(store.applyEvent('s-refuse', 'nope', 'reversal_submitted', { now: T(3), claimWindowMs: 0 }, { actor: 'dispatcher' })).rejects.toThrow(
      RefundNotFoundError,
    );
  });

  it('finds a refund by id (the first order to claim an id keeps it), keeps inbound records in order, and scans only orders', async () => {
    for (const orderId of ['s-find-a', 's-find-b']) {
      await store.putOrder(openOrder(demoOrder(orderId), T(0)));
      await store.createRefund(orderId, refundSpec('shared-id'), T(1), { actor: 'ap21' });
      await store.linkReference('refund', 'shared-id', { orderId }, T(1));
    }
    // Refund ids are the providers' idempotency references: a second order reusing one does not take it over.
    expect(await store.findRefundOrders('shared-id')).toEqual(['s-find-a']);
    await store.recordInbound('s-find-a', { source: 'apace', key: 'k2', raw: '{"b":2}', note: 'late' }, T(5));
    await store.recordInbound('s-find-a', { source: 'apace', key: 'k1', raw: '{"a":1}', note: 'duplicate' }, T(3));
    expect(await store.listInbound('s-find-a')).toEqual([
      { key: 'k1', receivedAt: T(3), source: 'apace', note: 'duplicate', raw: '{"a":1}' },
      { key: 'k2', receivedAt: T(5), source: 'apace', note: 'late', raw: '{"b":2}' },
    ]);
    expect(await store.listInbound('s-find-b')).toEqual([]);
    const scanned: string[] = [];
    for await (const order of store.scanOrders({ pageSize: 3 })) scanned.push(order.orderId);
    expect(scanned).toEqual(expect.arrayContaining(['s-find-a', 's-find-b', 's-create']));
    expect(new Set(scanned).size).toBe(scanned.length);
  });

  it('never reserves a unit twice: 30 concurrent refunds for a line of 5 units, exactly 5 win', async () => {
    await store.putOrder(
      openOrder(
        demoOrder('s-contend', {
          lines: [{ lineId: '1', quantity: 5, valueMinor: 5000 }],
          payments: [{ paymentId: 'pay-1', capturedMinor: 5000, provider: 'optty' }],
        }),
        T(0),
      ),
    );
    const attempts = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        store.createRefund('s-contend', refundSpec(`c${i}`, { amount: { minor: 1000, currency: 'AUD' } }), T(1), { actor: 'refundid' }),
      ),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(5);
    expect(attempts.filter((a) => a.status === 'rejected').every((a) => a.reason instanceof UnitsUnavailableError)).toBe(true);
    const order = (await store.getOrder('s-contend'))!;
    expect(order.lines['1']).toMatchObject({ purchased: 5, reserved: 5, available: 0 });
    expect(order.payments['pay-1']).toMatchObject({ reservedMinor: 5000, availableMinor: 0 });
    expect(Object.keys(order.refunds)).toHaveLength(5);
  });

  it('answers a verification from one UpdateItem round trip, and 404s an unknown refund in one too', async () => {
    await store.putOrder(openOrder(demoOrder('s-verify'), T(0)));
    await store.createRefund('s-verify', refundSpec('r1', { route: 'apace', offerExpiresAt: T(50) }), T(1), { actor: 'ap21' });
    calls = 0;
    expect(await store.recordVerification('s-verify', 'r1', T(2))).toEqual({ state: 'offer_pending', channel: 'apace', offerExpiresAt: T(50) });
    expect(calls).toBe(1);
    calls = 0;
    await expect(store.recordVerification('s-verify', 'nope', T(2))).rejects.toThrow(RefundNotFoundError);
    expect(calls).toBe(1);
    expect((await store.getOrder('s-verify'))!.refunds.r1).toMatchObject({ verifications: 1, lastVerifiedAt: T(2) });
  });

  it('applies every transition exactly as the pure model does, over random event sequences', async () => {
    const routes: Channel[] = ['apace', 'reversal', 'refundid', 'exchange'];
    const stepArb = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant('create' as const),
          route: fc.constantFrom(...routes),
          line: fc.constantFrom('1', '2'),
          awaitReceipt: fc.boolean(),
        }),
        weight: 1,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant('event' as const),
          pick: fc.nat(),
          fromState: fc.nat({ max: 9 }).map((n) => n < 8),
          unseen: fc.boolean(),
          r: fc.nat({ max: 3 }),
        }),
        weight: 4,
      },
      { arbitrary: fc.record({ kind: fc.constant('verify' as const), r: fc.nat({ max: 3 }) }), weight: 1 },
    );
    let run = 0;
    const applied = new Set<RefundEvent>();
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 10, maxLength: 40, size: 'max' }), async (steps) => {
        const orderId = `s-model-${run++}`;
        let model: Order = openOrder(demoOrder(orderId), T(0));
        await store.putOrder(model);
        const ids: string[] = [];
        for (const [i, step] of steps.entries()) {
          const now = T(i * 200);
          const ctx: TransitionContext = { now, claimWindowMs: 300_000, offerExpiresAt: T(i * 200 + 1000) };
          if (step.kind === 'create') {
            const spec = refundSpec(`r${ids.length}`, {
              route: step.route,
              lines: { [step.line]: 1 },
              amount: { minor: 1000, currency: 'AUD' },
              ...(step.route === 'apace' && { offerExpiresAt: T(i * 200 + 1000) }),
              // Paid only once Ap21 shows the return received, within a wait of a few steps (docs/design.md §2.9).
              ...(step.awaitReceipt && (step.route === 'apace' || step.route === 'reversal') && { awaitReceiptUntil: T(i * 200 + 600) }),
              // An exchange record: settled at once, with what the exchange left to refund (here none).
              ...(step.route === 'exchange' && {
                amount: { minor: 0, currency: 'AUD' },
                alreadyPaid: true,
                settledBy: 'Ap21 exchange order X1',
                source: { kind: 'ap21_exchange', ref: `r${ids.length}` },
              }),
            });
            let expected: 'created' | 'refused' = 'created';
            try {
              model = addRefund(model, spec, now).order;
            } catch {
              expected = 'refused';
            }
            const actual = await store.createRefund(orderId, spec, now, { actor: 'ap21' }).then(
              () => 'created',
              () => 'refused',
            );
            expect(actual).toBe(expected);
            if (expected === 'created') ids.push(spec.refundId);
          } else if (ids.length) {
            const refundId = ids[step.r % ids.length]!;
            if (step.kind === 'verify') {
              model = recordVerification(model, refundId, now);
              await store.recordVerification(orderId, refundId, now);
            } else {
              // Mostly an event the refund's state allows (so runs go deep), half of those one no run
              // has applied yet (so rare transitions are reached as the table grows), sometimes any event.
              const candidates = REFUND_EVENTS.filter((e) => ruleFor(e).from.includes(model.refunds[refundId]!.state));
              const unseen = candidates.filter((e) => !applied.has(e));
              const allowed = unseen.length && step.unseen ? unseen : candidates;
              const pool = step.fromState && candidates.length ? allowed : REFUND_EVENTS;
              const event: RefundEvent = pool[step.pick % pool.length]!;
              // The wait for a receipt ends with its reason, which a later receipt still releases.
              const eventCtx = event === 'receipt_overdue' ? { ...ctx, reason: `${RECEIPT_OVERDUE_REASON} 30 days` } : ctx;
              const expected = applyRefundEvent(model, refundId, event, eventCtx);
              model = expected.order;
              const actual = await store.applyEvent(orderId, refundId, event, eventCtx, { actor: 'dispatcher' });
              expect(actual.applied ? 'applied' : actual.why).toBe(expected.plan.ok ? 'applied' : expected.plan.why);
              if (actual.applied) applied.add(event);
            }
          }
        }
        const stored = (await store.getOrder(orderId))!;
        expect(stored.lines).toEqual(model.lines);
        expect(stored.payments).toEqual(model.payments);
        expect(stored.refunds).toEqual(model.refunds);
        expect(stored.version).toBe(model.version);
      }),
      { numRuns: 80, seed: 6 },
    );
    // Every transition must really have been exercised, or agreement proves little.
    expect(REFUND_EVENTS.filter((event) => !applied.has(event))).toEqual([]);
  });
});

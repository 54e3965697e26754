import { createDocumentClient } from '../../lambdas/commons/clients/dynamodb';
import { DynamoOrderStore } from '../../lambdas/store/dynamodb-order-store';
import { startTestDynamo, type TestDynamo } from '../support/dynamo';

let dynamo: TestDynamo;
let store: DynamoOrderStore;

beforeAll(async () => {
  dynamo = await startTestDynamo('pending-test');
  store = new DynamoOrderStore(createDocumentClient(dynamo.endpoint), dynamo.tableName);
});
afterAll(() => dynamo.close());

const T = (minute: number) => new Date(Date.UTC(2026, 2, 1, 10, minute)).toISOString();
const cursor = { since: T(0), startedAt: T(10), startRow: 51, seen: ['20784', '20785'] };

describe('watermarks', () => {
  it('move only from the version they were read at, never backwards, and keep a cursor until a pass completes', async () => {
    expect(await store.getWatermark('w')).toBeUndefined();
    expect(await store.advanceWatermark('w', undefined, { at: T(10), cursor }, T(11))).toBe(true);
    expect(await store.advanceWatermark('w', undefined, { at: T(12) }, T(12))).toBe(false);
    const first = (await store.getWatermark('w'))!;
    expect(first).toEqual({ name: 'w', at: T(10), cursor, version: 1, updatedAt: T(11) });

    expect(await store.advanceWatermark('w', first, { at: T(20) }, T(21))).toBe(true);
    expect(await store.advanceWatermark('w', first, { at: T(30) }, T(31))).toBe(false);
    const second = (await store.getWatermark('w'))!;
    expect(second).toEqual({ name: 'w', at: T(20), version: 2, updatedAt: T(21) });
    await expect(store.advanceWatermark('w', second, { at: T(19) }, T(32))).rejects.toThrow('cannot move back');
  });
});

describe('pending inbox records', () => {
  const record = (key: string) => ({ source: 'ap21' as const, key, raw: `<ReturnOrder>${key}</ReturnOrder>`, note: 'pushed', attributes: { returnId: key } });

  it('are kept once per key, found while pending (oldest first), and no longer once settled', async () => {
    expect(await store.recordPendingInbound('ap21-1', record('push-1'), T(1))).toMatchObject({ stored: true, record: { status: 'pending', receivedAt: T(1) } });
    expect(await store.recordPendingInbound('ap21-1', { ...record('push-1'), raw: 'different' }, T(2))).toEqual({
      stored: false,
      record: { orderId: 'ap21-1', ...record('push-1'), receivedAt: T(1), status: 'pending' },
    });
    await store.recordPendingInbound('ap21-2', record('push-2'), T(3));
    await store.recordPendingInbound('ap21-3', record('push-3'), T(5));

    expect((await store.findPendingInbound('ap21', T(4), 10)).map((pending) => pending.key)).toEqual(['push-1', 'push-2']);
    expect(await store.findPendingInbound('paypro', T(9), 10)).toEqual([]);
    await store.settleInbound('ap21-1', 'ap21', 'push-1', 'processed', 'ingested: created', T(6));
    expect((await store.findPendingInbound('ap21', T(9), 10)).map((pending) => pending.key)).toEqual(['push-2', 'push-3']);
    expect(await store.recordPendingInbound('ap21-1', record('push-1'), T(7))).toMatchObject({ stored: false, record: { status: 'processed' } });
    // Pending records never show up as dispatch work.
    expect(await store.findDueOrders(T(59), 10)).toEqual([]);
  });
});

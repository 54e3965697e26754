import type { DynamoOrderStore } from '../../../lambdas/store/dynamodb-order-store';
import { startTestStore, type TestDynamo } from '../../support/dynamo';

let dynamo: TestDynamo;
let store: DynamoOrderStore;

beforeAll(async () => {
  ({ dynamo, store } = await startTestStore('inbox-test'));
});
afterAll(() => dynamo.close());

const T = (minute: number) => new Date(Date.UTC(2026, 2, 1, 10, minute)).toISOString();

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

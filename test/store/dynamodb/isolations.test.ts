import type { DynamoOrderStore } from '../../../lambdas/store/dynamodb-order-store';
import type { Isolation } from '../../../lambdas/store/order-store';
import { startTestStore, type TestDynamo } from '../../support/dynamo';

let dynamo: TestDynamo;
let store: DynamoOrderStore;

beforeAll(async () => {
  ({ dynamo, store } = await startTestStore('isolation-test'));
});
afterAll(() => dynamo.close());

const T = (minute: number) => new Date(Date.UTC(2026, 2, 1, 10, minute)).toISOString();
const isolation = (subject: string, fingerprint: string, raw = '<Order/>'): Isolation => ({
  source: 'ap21',
  subject,
  fingerprint,
  reason: `why ${subject}`,
  raw,
  attributes: { ap21OrderId: subject.split(':')[1]! },
});

describe('records set aside for an operator', () => {
  it('are kept once per fingerprint, opened again when the record changed, and released only as they were', async () => {
    expect(await store.isolate(isolation('order:1', 'f1'), T(1))).toEqual({ opened: true });
    expect(await store.isolate(isolation('order:1', 'f1'), T(2))).toEqual({ opened: false });
    expect(await store.getIsolation('ap21', 'order:1')).toMatchObject({ fingerprint: 'f1', since: T(1), reason: 'why order:1' });

    expect(await store.isolate(isolation('order:1', 'f2'), T(3))).toEqual({ opened: true });
    expect(await store.getIsolation('ap21', 'order:1')).toMatchObject({ fingerprint: 'f2', since: T(3) });
    // A release planned on the old data does not release the new.
    expect(await store.releaseIsolation('ap21', 'order:1', 'f1')).toBe(false);
    expect(await store.releaseIsolation('ap21', 'order:1', 'f2')).toBe(true);
    expect(await store.getIsolation('ap21', 'order:1')).toBeUndefined();
    expect(await store.releaseIsolation('ap21', 'order:1', 'f2')).toBe(false);
  });

  it('are listed per source, oldest first, with their raw data bounded', async () => {
    await store.isolate(isolation('returns:3', 'a'), T(5));
    await store.isolate(isolation('order:2', 'b', 'x'.repeat(100_000)), T(4));
    const listed = await store.listIsolations('ap21');
    expect(listed.map((entry) => [entry.subject, entry.since])).toEqual([
      ['order:2', T(4)],
      ['returns:3', T(5)],
    ]);
    expect(listed[0]!.raw.length).toBeLessThan(17_000);
    expect(await store.listIsolations('apace')).toEqual([]);
    // They are not orders: an operator's scan of orders does not see them.
    const scanned = [];
    for await (const order of store.scanOrders()) scanned.push(order);
    expect(scanned).toEqual([]);
  });
});

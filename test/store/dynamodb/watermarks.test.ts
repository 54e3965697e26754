import type { DynamoOrderStore } from '../../../lambdas/store/dynamodb-order-store';
import { startTestStore, type TestDynamo } from '../../support/dynamo';

let dynamo: TestDynamo;
let store: DynamoOrderStore;

beforeAll(async () => {
  ({ dynamo, store } = await startTestStore('watermark-test'));
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

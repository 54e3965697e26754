import { startApaceLivenessWorld, type ApaceLivenessWorld } from '../support/harness/relay-with-apace-and-epg';

let world: ApaceLivenessWorld;
beforeAll(async () => {
  world = await startApaceLivenessWorld({ APACE_CURRENCY: 'AUD' });
});
afterAll(() => world.close());

describe('Apace only in its currency (APACE_CURRENCY)', () => {
  it('never sends a refund in another currency to Apace: card reversal at once, the reason in the timeline', async () => {
    const { refundId, apaceRefundId } = await world.offeredRefund('cur-eur', 'EUR');
    expect(apaceRefundId).toBeUndefined();
    expect(world.apaceRequests.filter((request) => request.includes('cur-eur'))).toEqual([]);
    const order = (await world.stack.runtime.store.getOrder('cur-eur'))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'paid', channel: 'reversal' });
    expect(world.epg.payouts().get(refundId)).toBe(1);
    expect(order.timeline).toContainEqual(
      expect.objectContaining({ event: 'apace_skipped', from: 'offer_pending', to: 'reversal_pending', note: 'Apace pays only in AUD; this refund is in EUR' }),
    );
  });

  it("offers a refund in the account's currency through Apace", async () => {
    const { apaceRefundId } = await world.offeredRefund('cur-aud', 'AUD');
    expect(apaceRefundId).toBeDefined();
    expect(world.apaceRequests).toContain('POST /ext/refunds cur-aud');
  });
});

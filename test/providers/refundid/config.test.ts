import { ConfigurationError } from '../../../lambdas/commons/config';
import { loadRefundidConfig } from '../../../lambdas/providers/refundid/config';

describe('Refundid settings', () => {
  it('needs the addresses Refundid calls from, and reads the cache settings', () => {
    expect(() => loadRefundidConfig({})).toThrow(ConfigurationError);
    expect(() => loadRefundidConfig({ REFUNDID_ALLOWED_IPS: ' , ' })).toThrow('REFUNDID_ALLOWED_IPS lists no address');
    expect(() => loadRefundidConfig({ REFUNDID_ALLOWED_IPS: 'rapi.refundid.com' })).toThrow(
      'REFUNDID_ALLOWED_IPS has not IP addresses or CIDR blocks: rapi.refundid.com',
    );
    expect(() => loadRefundidConfig({ REFUNDID_ALLOWED_IPS: '34.87.219.187', REFUNDID_ORDER_CACHE_SECONDS: '-1' })).toThrow(ConfigurationError);
    expect(loadRefundidConfig({ REFUNDID_ALLOWED_IPS: '34.87.219.187' })).toEqual({
      allowedIps: ['34.87.219.187'],
      orderCacheTtlMs: 60_000,
      orderCacheMaxEntries: 1000,
    });
    expect(loadRefundidConfig({ REFUNDID_ALLOWED_IPS: '34.116.107.90', REFUNDID_ORDER_CACHE_SECONDS: '0' }).orderCacheTtlMs).toBe(0);
  });
});

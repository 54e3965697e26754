import { sourceIpMatcher } from '../../../lambdas/commons/source-ip';
import { DOCUMENTED_IPN_SOURCE_IPS, loadPayProIpnConfig } from '../../../lambdas/providers/paypro/config';

describe('PayPro IPN source addresses', () => {
  const documented = sourceIpMatcher(loadPayProIpnConfig({}).sourceIps);

  it.each(DOCUMENTED_IPN_SOURCE_IPS)('admits the documented address %s', (ip) => expect(documented(ip)).toBe(true));

  it('admits other spellings of the same addresses', () => {
    expect(documented('2604:A880:400:D0:0:0:1843:7001')).toBe(true);
    expect(documented('::ffff:198.199.123.239')).toBe(true);
  });

  it.each(['198.199.123.240', '127.0.0.1', '2604:a880:400:d0::1843:7002', '', 'not-an-ip'])('refuses %p', (ip) => expect(documented(ip)).toBe(false));

  it('takes its list from PAYPRO_IPN_SOURCE_IPS and refuses entries that are not addresses', () => {
    const local = sourceIpMatcher(loadPayProIpnConfig({ PAYPRO_IPN_SOURCE_IPS: '127.0.0.1, ::1' }).sourceIps);
    expect([local('127.0.0.1'), local('::1'), local('198.199.123.239')]).toEqual([true, true, false]);
    expect(() => loadPayProIpnConfig({ PAYPRO_IPN_SOURCE_IPS: '127.0.0.1,paypro.com' })).toThrow(/not IP addresses: paypro.com/);
  });
});

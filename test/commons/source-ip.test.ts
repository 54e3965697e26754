import { InvalidAllowlistError, parseAllowlist, sourceIpMatcher } from '../../lambdas/commons/source-ip';

describe('source address allowlists', () => {
  it('reads addresses and CIDR blocks, both families, ignoring blanks', () => {
    expect(parseAllowlist(' 34.87.219.187, 10.0.0.0/8,,2604:a880:400:d0::/64 ')).toEqual(['34.87.219.187', '10.0.0.0/8', '2604:a880:400:d0::/64']);
  });

  it.each(['34.87.219', '10.0.0.0/33', '::/129', '1.2.3.4/8/8', 'rapi.refundid.com', '10.0.0.0/x'])('refuses %s', (entry) => {
    expect(() => parseAllowlist(`127.0.0.1,${entry}`)).toThrow(new InvalidAllowlistError(`not IP addresses or CIDR blocks: ${entry}`));
  });

  it('matches listed addresses, addresses inside listed blocks, other IPv6 spellings and IPv4-mapped forms; nothing else', () => {
    const allowed = sourceIpMatcher(['34.87.219.187', '10.1.0.0/16', '2604:a880:400:d0::1843:7001']);
    for (const ip of ['34.87.219.187', '::ffff:34.87.219.187', '10.1.255.3', '2604:A880:400:D0:0:0:1843:7001']) expect(allowed(ip)).toBe(true);
    for (const ip of ['34.87.219.188', '10.2.0.1', '34.116.107.90', '', 'localhost', '::ffff:10.2.0.1', '2604:a880:400:d0::1843:7002'])
      expect(allowed(ip)).toBe(false);
  });
});

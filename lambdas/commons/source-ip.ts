import { BlockList, isIP } from 'node:net';
import { ConfigurationError } from './config';

/**
 * Source-address allowlists for inbound routes (DESIGN §3), from a comma-separated list of IPv4
 * or IPv6 addresses and CIDRs. IPv4-mapped IPv6 spellings (`::ffff:203.0.113.7`) match their IPv4
 * entries. An empty list matches nobody: an allowlisted route with no addresses is closed.
 */
export function sourceIpMatcher(list: string, variable: string): (sourceIp: string) => boolean {
  const allowed = new BlockList();
  for (const entry of list.split(',').map((item) => item.trim()).filter(Boolean)) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    if (family === 0 || rest.length > 0 || (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits))) {
      throw new ConfigurationError(`${variable} has "${entry}", not an IP address or CIDR`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) allowed.addAddress(address, type);
    else allowed.addSubnet(address, Number(prefix), type);
  }
  return (sourceIp) => {
    const family = isIP(sourceIp);
    return family !== 0 && allowed.check(sourceIp, family === 4 ? 'ipv4' : 'ipv6');
  };
}

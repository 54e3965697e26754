import { BlockList, isIP } from 'node:net';
import { ConfigurationError } from './config';

export class InvalidAllowlistError extends Error {
  override readonly name = 'InvalidAllowlistError';
}

/**
 * Parses a comma-separated list of IP addresses and CIDR blocks (the form stage config uses for
 * `ipAllowlists`, handed to Lambdas in an environment variable). Throws on anything else.
 */
export function parseAllowlist(text: string): string[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const invalid = entries.filter((entry) => {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || extra !== undefined) return true;
    if (prefix === undefined) return false;
    const bits = Number(prefix);
    return !/^\d{1,3}$/.test(prefix) || bits > (family === 6 ? 128 : 32);
  });
  if (invalid.length > 0) throw new InvalidAllowlistError(`not IP addresses or CIDR blocks: ${invalid.join(', ')}`);
  return entries;
}

/**
 * The entries of an allowlist setting, as `parseAllowlist` reads them, or a ConfigurationError
 * naming the variable (`what` names the settings, as in `parseEnvironment`).
 */
export function allowlistSetting(variable: string, text: string, what: string): string[] {
  try {
    return parseAllowlist(text);
  } catch (error) {
    if (error instanceof InvalidAllowlistError) throw new ConfigurationError(`bad ${what}environment: ${variable} has ${error.message}`);
    throw error;
  }
}

/**
 * A matcher for allowlisted source addresses and blocks. IPv6 spellings compare equal, and an
 * IPv4-mapped IPv6 address (`::ffff:34.87.219.187`) matches its IPv4 entry.
 */
export function sourceIpMatcher(allowed: readonly string[]): (sourceIp: string) => boolean {
  const list = new BlockList();
  for (const entry of allowed) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return (sourceIp) => {
    const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(sourceIp)?.[1];
    const address = mapped ?? sourceIp;
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

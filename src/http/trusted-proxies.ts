/**
 * Which peers may speak for a client: the proxies named in TRUSTED_PROXIES (addresses or
 * CIDRs). Only a request whose TCP peer is one of them has its forwarded headers believed.
 */
import { BlockList, isIP } from 'node:net';

/** An IPv4 client seen on a dual-stack socket arrives as `::ffff:a.b.c.d`. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** `10.0.0.0/8` or `2001:db8::/32` or a single address; undefined when it is neither. */
export function parseProxyEntry(entry: string): { address: string; prefix?: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, prefixText, extra] = entry.trim().split('/');
  if (extra !== undefined || !address) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) return { address, family };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefix: Number(prefixText), family };
}

export type ProxyTrust = (peer: string | undefined) => boolean;

/** A test of a peer address against the list (entries already validated by the config). */
export function trustedProxies(entries: readonly string[]): ProxyTrust {
  const list = new BlockList();
  for (const entry of entries) {
    const parsed = parseProxyEntry(entry);
    if (!parsed) throw new Error(`not an address or CIDR: ${entry}`);
    if (parsed.prefix === undefined) list.addAddress(parsed.address, parsed.family);
    else list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return (peer) => {
    if (!peer) return false;
    const address = plainAddress(peer);
    const version = isIP(address);
    return version !== 0 && list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
}

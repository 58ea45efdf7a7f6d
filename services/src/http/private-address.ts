import { BlockList, isIP } from 'node:net';

/**
 * Addresses a URL chosen by a customer (a team's SSO issuer, a webhook endpoint) may not point at
 * unless the operator allows it: without the check, a team could make Tollgate reach into the
 * installation's own network (SSRF).
 */
const privateRanges = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  privateRanges.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::1', 128],
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const) {
  privateRanges.addSubnet(network, prefix, 'ipv6');
}

/** True for a private, loopback, link-local or unspecified IPv4/IPv6 address (IPv4-mapped too). */
export function isPrivateAddress(address: string): boolean {
  const unmapped = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  const family = isIP(unmapped);
  if (family === 0) return false;
  return privateRanges.check(unmapped, family === 6 ? 'ipv6' : 'ipv4');
}

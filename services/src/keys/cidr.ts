import { isIPv4, isIPv6 } from 'node:net';

/** A network in CIDR notation: the address with no bits set right of the prefix. */
export interface Cidr {
  family: 'ipv4' | 'ipv6';
  /** The network address, in the canonical text form Postgres's `cidr` prints. */
  address: string;
  /** Prefix length in bits. */
  prefix: number;
}

export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; problem: string };

function ipv4Bits(address: string): bigint {
  return address.split('.').reduce((bits, part) => (bits << 8n) | BigInt(Number(part)), 0n);
}

function ipv4Text(bits: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => ((bits >> shift) & 0xffn).toString()).join('.');
}

/** 128 bits of an IPv6 address (isIPv6 has already accepted it), an embedded IPv4 tail included. */
function ipv6Bits(address: string): bigint {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (dotted) {
    const v4 = ipv4Bits(dotted);
    text = `${text.slice(0, -dotted.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run of 2+ zero groups as `::`. */
function ipv6Text(bits: bigint): string {
  const groups = Array.from({ length: 8 }, (_, index) => Number((bits >> BigInt(112 - index * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32`, or a single address (a /32 or /128 network). Refuses an
 * address with bits set right of the prefix (`10.0.0.1/8`), as Postgres's `cidr` type does, rather
 * than silently widening or narrowing what the caller meant.
 */
export function parseCidr(text: string): CidrParse {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const address = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefixText = slash < 0 ? undefined : trimmed.slice(slash + 1);
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) && !address.includes('%') ? 'ipv6' : undefined;
  if (!family) return { ok: false, problem: `"${text}" is not an IPv4 or IPv6 address or network` };
  const width = family === 'ipv4' ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) {
    return { ok: false, problem: `"${text}" has no valid prefix length after /` };
  }
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (prefix > width)
    return { ok: false, problem: `"${text}": the prefix length of an ${family} network is 0 to ${width}` };
  const bits = family === 'ipv4' ? ipv4Bits(address) : ipv6Bits(address);
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  if ((bits & hostMask) !== 0n) {
    const network = bits & ~hostMask;
    const suggestion = `${family === 'ipv4' ? ipv4Text(network) : ipv6Text(network)}/${prefix}`;
    return { ok: false, problem: `"${text}" has bits set right of the /${prefix} prefix; did you mean ${suggestion}?` };
  }
  return {
    ok: true,
    cidr: { family, address: family === 'ipv4' ? ipv4Text(bits) : ipv6Text(bits), prefix },
  };
}

export function cidrText(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefix}`;
}

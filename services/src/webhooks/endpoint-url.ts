import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TollgateError } from '../errors/tollgate-error.js';
import { isPrivateAddress } from '../http/private-address.js';

export const privateAddressHint =
  'an operator can allow private and loopback endpoints with TOLLGATE_WEBHOOKS_ALLOW_PRIVATE=true';

/** The bare host of a URL: without the brackets of an IPv6 literal. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/**
 * A team chooses the URL and Tollgate POSTs to it, so unless the operator allows it
 * (TOLLGATE_WEBHOOKS_ALLOW_PRIVATE) the host must not be, or resolve to, a private or loopback
 * address. The delivery job checks the addresses it connects to again (DNS can change).
 */
export async function checkEndpointUrl(text: string, options: { allowPrivate: boolean }): Promise<URL> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TollgateError('validation_failed', 'url: must be an http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TollgateError('validation_failed', `url: must be an http:// or https:// URL (got ${url.protocol})`);
  }
  if (url.username || url.password) {
    throw new TollgateError('validation_failed', 'url: must not carry a user name or password');
  }
  if (url.hash) throw new TollgateError('validation_failed', 'url: must not have a #fragment');
  if (options.allowPrivate) return url;
  const host = hostOf(url);
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((entry) => entry.address);
  } catch {
    throw new TollgateError('validation_failed', `url: the host ${host} does not resolve`);
  }
  if (addresses.some(isPrivateAddress)) {
    throw new TollgateError('validation_failed', `url: ${host} is a private or loopback address`, {
      hint: privateAddressHint,
    });
  }
  return url;
}

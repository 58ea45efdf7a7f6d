/**
 * What a person's browser does during an OAuth login, without a browser: follows redirects, keeps
 * each host's cookies, and submits the self-posting forms of `response_mode=form_post`. It stops
 * before loading a URL `stopAt` accepts (the client's loopback address, which may not listen) and
 * returns it.
 */
export interface BrowseResult {
  /** The URL it stopped at, or the last one loaded. */
  url: URL;
  /** The last response loaded (undefined when it stopped before loading). */
  status?: number;
  body?: string;
  /** Every request made, in order, as `METHOD url`. */
  visited: string[];
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCharCode(Number.parseInt(code, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

/** The auto-submitting form of a form_post answer: where it posts and its hidden fields. */
function selfPostingForm(html: string): { action: string; fields: URLSearchParams } | undefined {
  const form =
    /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(html) ??
    /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(html);
  if (!form?.[1]) return undefined;
  const fields = new URLSearchParams();
  for (const input of html.matchAll(/<input[^>]*>/gi)) {
    const name = /name="([^"]*)"/i.exec(input[0])?.[1];
    const value = /value="([^"]*)"/i.exec(input[0])?.[1] ?? '';
    if (name) fields.append(decodeEntities(name), decodeEntities(value));
  }
  return { action: decodeEntities(form[1]), fields };
}

export async function browse(
  start: string,
  options: { stopAt?: (url: URL) => boolean; cookies?: Map<string, Map<string, string>> } = {},
): Promise<BrowseResult> {
  const jar = options.cookies ?? new Map<string, Map<string, string>>();
  let url = new URL(start);
  let method = 'GET';
  let body: URLSearchParams | undefined;
  const visited: string[] = [];
  for (let hop = 0; hop < 25; hop++) {
    if (options.stopAt?.(url)) return { url, visited };
    visited.push(`${method} ${url.href}`);
    const hostCookies = jar.get(url.host) ?? new Map<string, string>();
    const headers: Record<string, string> = { 'user-agent': 'Mozilla/5.0 (test browser)' };
    if (hostCookies.size > 0) headers.cookie = [...hostCookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, {
      method,
      headers,
      redirect: 'manual',
      ...(body ? { body: body.toString() } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const index = pair?.indexOf('=') ?? -1;
      if (!pair || index < 1) continue;
      const name = pair.slice(0, index).trim();
      const value = pair.slice(index + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(cookie) || value === '') hostCookies.delete(name);
      else hostCookies.set(name, value);
    }
    jar.set(url.host, hostCookies);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.arrayBuffer();
      url = new URL(location, url);
      method = 'GET';
      body = undefined;
      continue;
    }
    const text = await response.text();
    const form = response.status === 200 ? selfPostingForm(text) : undefined;
    if (form) {
      url = new URL(form.action, url);
      method = 'POST';
      body = form.fields;
      continue;
    }
    return { url, status: response.status, body: text, visited };
  }
  throw new Error(`too many redirects from ${start}`);
}

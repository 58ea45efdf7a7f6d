import type { PlanEntitlements } from './plan-schemas.js';

/** The largest sf-integer (RFC 9651 section 3.3.1: at most 15 digits). */
const maxInteger = 999_999_999_999_999;
/** An sf-decimal: at most 12 integer and 3 fractional digits (RFC 9651 section 3.3.2). */
const decimal = /^-?\d{1,12}\.\d{1,3}$/;
/** Printable ASCII, what an sf-string may hold (RFC 9651 section 3.3.3). */
const printableAscii = /^[\x20-\x7e]*$/;
/** An sf-key (RFC 9651 section 3.1.2); plan entitlement names are a subset of it. */
const key = /^[a-z*][a-z0-9_.*-]*$/;

/**
 * A plan's entitlements as the `Tollgate-Entitlements` header value: an RFC 9651 structured-field
 * Dictionary, keys sorted. `true` is a bare key, `false` is `?0`; integers are sf-integers and
 * numbers with at most 12 integer and 3 fractional digits sf-decimals; any other number (too large,
 * too precise, exponent notation) is an sf-string of its JSON text; printable ASCII text is an
 * sf-string, any other text a Display String (`%"..."`, UTF-8 percent-encoded in lower-case hex).
 * No entitlements: the empty string, an empty Dictionary (section 4.2: an empty field value).
 * Names or values no plan could hold are left out rather than break the header.
 */
export function entitlementsHeaderValue(entitlements: Readonly<PlanEntitlements>): string {
  const members: string[] = [];
  for (const name of Object.keys(entitlements).sort()) {
    if (!key.test(name)) continue;
    const item = bareItem(entitlements[name]);
    if (item === undefined) continue;
    members.push(item === true ? name : `${name}=${item}`);
  }
  return members.join(', ');
}

/** A value's sf bare item; `true` for a bare key (a Dictionary member without a value is true). */
function bareItem(value: unknown): string | true | undefined {
  if (value === true) return true;
  if (value === false) return '?0';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    // String() is the shortest text that reads back as the same number, the JSON text; -0 gives "0".
    const text = String(value);
    if (Number.isInteger(value) && Math.abs(value) <= maxInteger) return text;
    if (decimal.test(text)) return text;
    return sfString(text);
  }
  if (typeof value === 'string') return printableAscii.test(value) ? sfString(value) : displayString(value);
  return undefined;
}

/** RFC 9651 section 4.1.6: `\` and `"` escaped with a backslash. */
function sfString(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * RFC 9651 section 4.1.11: the UTF-8 bytes, `%`, `"`, controls and non-ASCII bytes as `%` and two
 * lower-case hex digits.
 */
function displayString(text: string): string {
  let out = '%"';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte === 0x25 || byte === 0x22 || byte <= 0x1f || byte >= 0x7f) {
      out += `%${byte.toString(16).padStart(2, '0')}`;
    } else out += String.fromCharCode(byte);
  }
  return `${out}"`;
}

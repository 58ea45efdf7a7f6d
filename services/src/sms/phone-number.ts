import { TollgateError } from '../errors/tollgate-error.js';

/**
 * Phone numbers in E.164 form (ITU-T E.164): a `+`, a country calling code and the national number,
 * 15 digits at most, never starting with 0. That is the form SMS providers take, so it is the only
 * one Tollgate stores: no guessing of a country for a number typed without one.
 */

/** 7 digits is the shortest number in use (e.g. Saint Helena, +290 and 4 digits); 15 is E.164's maximum. */
const e164 = /^\+[1-9][0-9]{6,14}$/;
/** What people type between the digits: spaces, dashes, dots and brackets around an area code. */
const formatting = /[\s\-.()]/g;

export function isE164(value: unknown): value is string {
  return typeof value === 'string' && e164.test(value);
}

/**
 * The E.164 form of a typed number (`+1 (555) 123-4567` gives `+15551234567`), or `invalid_phone`.
 * The error never echoes the input: it may be someone's number.
 */
export function parsePhoneNumber(input: unknown): string {
  const compact = typeof input === 'string' ? input.trim().replace(formatting, '') : '';
  if (!isE164(compact)) {
    throw new TollgateError(
      'invalid_phone',
      'phone: must be a mobile number in international format, a + and the country code first, like +15551234567',
      { details: { issues: [{ path: 'phone', message: 'not an E.164 number' }] } },
    );
  }
  return compact;
}

/**
 * Country calling codes of one and two digits (ITU-T E.164 assigned codes, "List of ITU-T
 * Recommendation E.164 assigned country codes"); every other code has three digits. The codes are
 * prefix-free, so the first match is the code.
 */
const oneDigitCodes = new Set(['1', '7']);
const twoDigitCodes = new Set(
  (
    '20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 ' +
    '60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98'
  ).split(' '),
);

function countryCodeOf(digits: string): string {
  if (oneDigitCodes.has(digits.slice(0, 1))) return digits.slice(0, 1);
  if (twoDigitCodes.has(digits.slice(0, 2))) return digits.slice(0, 2);
  return digits.slice(0, 3);
}

/**
 * `+1 *** *** 4567`: the country code and the last four digits, enough for a person to recognise
 * their number and not enough to call it. The middle is always the same width, so the mask does not
 * tell the number's length either.
 */
export function maskPhoneNumber(phone: string): string {
  if (!isE164(phone)) throw new TypeError('maskPhoneNumber needs an E.164 number');
  const digits = phone.slice(1);
  return `+${countryCodeOf(digits)} *** *** ${digits.slice(-4)}`;
}

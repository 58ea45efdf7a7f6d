import { describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import { isE164, maskPhoneNumber, parsePhoneNumber } from './phone-number.js';

describe('phone numbers', () => {
  it.each([
    ['+15551234567', '+15551234567'],
    [' +1 (555) 123-4567 ', '+15551234567'],
    ['+44 7700 900123', '+447700900123'],
    ['+49.30.1234567', '+49301234567'],
  ])('reads %j as %s', (input, expected) => {
    expect(parsePhoneNumber(input)).toBe(expected);
  });

  it.each([
    ['4155550123', 'no country code'],
    ['+05551234567', 'a country code starting with 0'],
    ['+4412', 'too short'],
    ['+1234567890123456', 'longer than 15 digits'],
    ['+1555123456a', 'a letter'],
    ['+15551234567,+15557654321', 'two numbers'],
    ['', 'nothing'],
  ])('refuses %j (%s) with invalid_phone, without echoing it', (input) => {
    let error: unknown;
    try {
      parsePhoneNumber(input);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(TollgateError);
    expect((error as TollgateError).code).toBe('invalid_phone');
    expect((error as TollgateError).status).toBe(400);
    if (input !== '') expect((error as TollgateError).message).not.toContain(input);
  });

  it('masks all but the country code and the last four digits, with a fixed width', () => {
    expect(maskPhoneNumber('+15551234567')).toBe('+1 *** *** 4567');
    expect(maskPhoneNumber('+447700900123')).toBe('+44 *** *** 0123');
    expect(maskPhoneNumber('+3531234567')).toBe('+353 *** *** 4567');
    expect(maskPhoneNumber('+79161234567')).toBe('+7 *** *** 4567');
    expect(() => maskPhoneNumber('555')).toThrow(TypeError);
  });

  it('tells E.164 from anything else', () => {
    expect(isE164('+15551234567')).toBe(true);
    expect(isE164('15551234567')).toBe(false);
    expect(isE164(15551234567)).toBe(false);
  });
});

import { TollgateError } from '../errors/tollgate-error.js';
import { isE164 } from './phone-number.js';

/**
 * Outgoing text messages: the codes of SMS as a second factor. With Twilio configured they go
 * through Twilio's Messages API; without it (the embedded default) each one is written as a `.txt`
 * file, so a developer can read the code without an SMS account, as the mailer does with `.eml` files.
 */
export interface OutgoingSms {
  /** One number in E.164 form, like `+15551234567`. */
  to: string;
  /** Plain text. Up to 160 GSM-7 characters travel as one SMS; longer texts are split and cost more. */
  body: string;
}

export interface SmsSender {
  readonly transport: 'twilio' | 'files';
  /** Where messages go: the Twilio API base and account, or the absolute path of the SMS directory. */
  readonly location: string;
  /**
   * Throws `validation_failed` for a bad message (nothing is sent), `invalid_phone` when the provider
   * cannot deliver to the number, and `sms_failed` when sending fails otherwise.
   */
  send(message: OutgoingSms): Promise<{ messageId: string; path?: string }>;
  close(): Promise<void>;
}

/** Twilio's limit for one message body, in characters (it splits longer ones into segments). */
const maxBodyLength = 1600;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const controlExceptLineBreaks = /[\x00-\x09\x0b-\x1f\x7f]/;

function invalid(field: string, message: string): TollgateError {
  return new TollgateError('validation_failed', message, { details: { field } });
}

/** Checked before any transport, so a message that one refuses the other refuses too. */
export function validateOutgoingSms(message: OutgoingSms): void {
  if (!isE164(message.to)) throw invalid('to', 'the recipient must be one phone number in E.164 form');
  if (typeof message.body !== 'string' || message.body.trim() === '' || message.body.length > maxBodyLength) {
    throw invalid('body', `the text must have 1 to ${maxBodyLength} characters`);
  }
  if (controlExceptLineBreaks.test(message.body)) throw invalid('body', 'the text must not hold control characters');
}

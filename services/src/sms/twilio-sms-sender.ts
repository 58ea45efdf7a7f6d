import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';
import { tollgateVersion } from '../version.js';
import { type OutgoingSms, type SmsSender, validateOutgoingSms } from './sms-sender.js';

export interface TwilioSettings {
  /** TWILIO_ACCOUNT_SID: `AC` and 32 hex digits. */
  accountSid: string;
  /** TWILIO_AUTH_TOKEN: a secret, never logged. */
  authToken: string;
  /** TWILIO_FROM: an E.164 number of the account, or a messaging service sid (`MG...`). */
  from: string;
  /** TWILIO_API_BASE: `https://api.twilio.com`, or a local server in tests. */
  apiBase: string;
}

/** Milliseconds for one message, the whole exchange included: a stalled API must not hold a login. */
const defaultTimeoutMs = 10_000;

/**
 * Twilio's error codes that mean "not this number" rather than "not now" (twilio.com/docs/api/errors):
 * 21211 invalid 'To' number, 21408 no permission for the number's region, 21610 the recipient
 * replied STOP, 21612 the number cannot receive SMS from this sender, 21614 not a mobile number.
 * They answer `invalid_phone`: another try will not help, another number may.
 */
const recipientErrors = new Set([21211, 21408, 21610, 21612, 21614]);

/** Twilio's JSON error body (twilio.com/docs/usage/twilios-response#response-formats-exceptions). */
interface TwilioError {
  code?: unknown;
  message?: unknown;
  more_info?: unknown;
  status?: unknown;
}

/** Phone numbers out of a provider message before it is logged: Twilio's messages often quote the 'To'. */
function withoutNumbers(text: string): string {
  return text.replace(/\+?\d[\d\s().-]{5,}\d/g, '[number]');
}

/**
 * Sends through Twilio's Messages API (twilio.com/docs/messaging/api/message-resource#create-a-message-resource):
 * `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `From` (or
 * `MessagingServiceSid`) and `Body`, HTTP Basic authentication with the account sid and auth token.
 * Twilio answers 201 with the message resource, whose `sid` (`SM...`) is the message id.
 */
export class TwilioSmsSender implements SmsSender {
  readonly transport = 'twilio';
  readonly location: string;
  readonly #messagesUrl: string;
  readonly #authorization: string;
  readonly #from: string;
  readonly #logger: Logger;
  readonly #timeoutMs: number;

  constructor(options: TwilioSettings & { logger: Logger; timeoutMs?: number }) {
    const base = options.apiBase.replace(/\/+$/, '');
    this.location = `${base}/2010-04-01/Accounts/${options.accountSid}`;
    this.#messagesUrl = `${base}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
    this.#authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
    this.#from = options.from;
    this.#logger = options.logger;
    this.#timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  }

  async send(message: OutgoingSms): Promise<{ messageId: string }> {
    validateOutgoingSms(message);
    const form = new URLSearchParams({ To: message.to, Body: message.body });
    // A messaging service picks the sending number itself (and can hold several).
    form.set(this.#from.startsWith('MG') ? 'MessagingServiceSid' : 'From', this.#from);
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.#messagesUrl, {
        method: 'POST',
        headers: {
          authorization: this.#authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'user-agent': `tollgate/${tollgateVersion}`,
        },
        body: form.toString(),
        // A redirect would carry the credentials somewhere else.
        redirect: 'error',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw this.#unreachable(error);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.ok) {
      const sid = (parsed as { sid?: unknown } | undefined)?.sid;
      if (typeof sid !== 'string' || sid === '') {
        this.#logger.warn(
          { transport: 'twilio', location: this.location, status: response.status },
          'Twilio answered without a message sid',
        );
        throw new TollgateError(
          'sms_failed',
          'could not send the text message: the SMS provider answered something unexpected',
          {
            details: { provider: 'twilio', provider_status: response.status },
          },
        );
      }
      this.#logger.debug(
        { transport: 'twilio', location: this.location, messageId: sid },
        'sent a text message through Twilio',
      );
      return { messageId: sid };
    }
    throw this.#refused(response.status, (parsed ?? {}) as TwilioError);
  }

  async close(): Promise<void> {
    // fetch holds nothing this sender owns.
  }

  #unreachable(error: unknown): TollgateError {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    this.#logger.warn(
      { transport: 'twilio', location: this.location, err: error },
      `sending a text message through ${this.location} failed`,
    );
    return new TollgateError(
      'sms_failed',
      `could not send the text message: the SMS provider ${timedOut ? 'did not answer in time' : 'could not be reached'}`,
      {
        hint: 'try again in a moment; check TWILIO_API_BASE and that this host reaches it',
        details: { provider: 'twilio' },
      },
    );
  }

  #refused(status: number, body: TwilioError): TollgateError {
    const code = typeof body.code === 'number' ? body.code : undefined;
    const providerMessage = typeof body.message === 'string' ? withoutNumbers(body.message) : undefined;
    this.#logger.warn(
      {
        transport: 'twilio',
        location: this.location,
        status,
        providerCode: code,
        moreInfo: typeof body.more_info === 'string' ? body.more_info : undefined,
      },
      `Twilio refused a text message: ${providerMessage ?? `HTTP ${status}`}`,
    );
    const details = {
      provider: 'twilio',
      provider_status: status,
      ...(code === undefined ? {} : { provider_code: code }),
    };
    if (code !== undefined && recipientErrors.has(code)) {
      return new TollgateError('invalid_phone', 'phone: the SMS provider cannot deliver text messages to this number', {
        hint: 'check the number, or use a mobile number that can receive text messages',
        details,
      });
    }
    if (status === 401 || status === 403) {
      return new TollgateError(
        'sms_failed',
        'could not send the text message: the SMS provider refused our credentials',
        {
          hint: 'an operator checks TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN',
          details,
        },
      );
    }
    return new TollgateError('sms_failed', 'could not send the text message: the SMS provider refused it', {
      hint:
        status === 429 || status >= 500
          ? 'try again in a moment'
          : 'an operator checks the Twilio settings and the logs',
      details,
    });
  }
}

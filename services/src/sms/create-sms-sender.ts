import type { Logger } from '../logging/logger.js';
import { FilesSmsSender } from './files-sms-sender.js';
import type { SmsSender } from './sms-sender.js';
import { type TwilioSettings, TwilioSmsSender } from './twilio-sms-sender.js';

export interface CreateSmsSenderOptions {
  /** Set when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM are. */
  twilio?: TwilioSettings | undefined;
  /** TOLLGATE_SMS_DIR: where messages are written without Twilio. */
  smsDir: string;
  logger: Logger;
}

/** Twilio when it is configured; otherwise `.txt` files in the SMS directory (the embedded default). */
export function createSmsSender(options: CreateSmsSenderOptions): SmsSender {
  return options.twilio === undefined
    ? new FilesSmsSender({ dir: options.smsDir, logger: options.logger })
    : new TwilioSmsSender({ ...options.twilio, logger: options.logger });
}

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';
import { type OutgoingSms, type SmsSender, validateOutgoingSms } from './sms-sender.js';

/**
 * The embedded default: each text message becomes a `.txt` file in the SMS directory, like the
 * mailer's `.eml` files, so SMS codes work end to end on a laptop with no SMS account. A file reads:
 *
 *   To: +15551234567
 *   Date: 2025-01-01T12:00:00.000Z
 *
 *   123456 is your Tollgate sign-in code. ...
 */
export class FilesSmsSender implements SmsSender {
  readonly transport = 'files';
  readonly location: string;
  readonly #logger: Logger;
  #checkedPermissions = false;

  constructor(options: { dir: string; logger: Logger }) {
    this.location = resolve(options.dir);
    this.#logger = options.logger;
  }

  async send(message: OutgoingSms): Promise<{ messageId: string; path: string }> {
    validateOutgoingSms(message);
    const now = new Date();
    const messageId = `file-${randomBytes(8).toString('hex')}`;
    // Colons are not allowed in Windows file names; the timestamp keeps the folder in sending order.
    const name = `${now.toISOString().replace(/:/g, '-')}-${messageId.slice(5)}.txt`;
    const path = join(this.location, name);
    // Written under a hidden name first, so nothing watching the folder sees half a message.
    const temporary = join(this.location, `.${name}.tmp`);
    try {
      await this.#prepareDirectory();
      const handle = await open(temporary, 'wx', 0o600);
      try {
        await handle.writeFile(`To: ${message.to}\nDate: ${now.toISOString()}\n\n${message.body}\n`);
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      this.#logger.warn(
        { transport: 'files', location: this.location, err: error },
        `could not write a text message to ${this.location}`,
      );
      throw new TollgateError('sms_failed', 'could not send the text message: the SMS directory is not writable', {
        hint: `check that ${this.location} can be created and written, or set the TWILIO_* settings`,
      });
    }
    // Only the path: the text holds a code, and the file is where a developer reads it.
    this.#logger.info(
      { transport: 'files', path },
      `wrote a text message to ${path} (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM to send SMS)`,
    );
    return { messageId, path };
  }

  async close(): Promise<void> {
    // Nothing held open between messages.
  }

  async #prepareDirectory(): Promise<void> {
    // Recreated every time, so clearing the folder while Tollgate runs is harmless.
    await mkdir(this.location, { recursive: true, mode: 0o700 });
    if (this.#checkedPermissions || process.platform === 'win32') return;
    this.#checkedPermissions = true;
    // Never chmod: the directory may be one the operator chose (and shares) on purpose.
    const { mode } = await stat(this.location);
    if ((mode & 0o077) !== 0) {
      this.#logger.warn(
        { path: this.location, mode: `0${(mode & 0o777).toString(8)}` },
        `${this.location} can be read by other users, and text messages hold sign-in codes: restrict it with chmod 700 ${this.location}`,
      );
    }
  }
}

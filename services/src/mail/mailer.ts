import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createTransport } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';

/**
 * Outgoing email for the identity flows: verification links, password resets, invitations and
 * email 2FA codes. With SMTP_URL the messages go to that server; without it (the embedded default)
 * each one is written as an `.eml` file, so a developer can open the link without a mail server.
 */
export interface OutgoingMail {
  /** One bare address, like `alice@example.com`: no display name, no list. */
  to: string;
  /** One line. */
  subject: string;
  text: string;
  html?: string;
  /** Extra headers such as `Auto-Submitted` or `X-Tollgate-Purpose`; the ones the mailer sets are refused. */
  headers?: Record<string, string>;
}

export interface Mailer {
  readonly transport: 'smtp' | 'files';
  /** Where mail goes: the SMTP URL without its password, or the absolute path of the mail directory. */
  readonly location: string;
  /** Throws `validation_failed` for a bad message (nothing is sent) and `mail_failed` when sending fails. */
  send(message: OutgoingMail): Promise<{ messageId: string; path?: string }>;
  /** Connects and logs in (SMTP) or checks the directory is writable (files); throws `mail_failed`. */
  verify(): Promise<void>;
  close(): Promise<void>;
}

export interface CreateMailerOptions {
  /** SMTP_URL: `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://user:pass@host:465`. */
  smtpUrl?: string;
  /** TOLLGATE_MAIL_FROM: one address, optionally with a display name, like `Tollgate <no-reply@example.com>`. */
  from: string;
  /** Where the files transport writes messages when there is no SMTP_URL. */
  mailDir: string;
  logger: Logger;
}

/** Milliseconds. A stalled server must not hold a request (or a job) for long. */
const connectionTimeoutMs = 10_000;
const greetingTimeoutMs = 10_000;
const socketTimeoutMs = 30_000;
/**
 * Milliseconds for one message, queueing in the pool included. The socket timeout misses a server
 * that trickles its replies a byte at a time; this deadline does not.
 */
const sendDeadlineMs = 60_000;

// An address we can read without ambiguity: no quotes, comments, brackets or whitespace, so what
// we validate is what nodemailer puts in the header and in RCPT TO. Non-ASCII (SMTPUTF8) is allowed.
const localPart = String.raw`[^\s\x00-\x1f\x7f@<>()[\]\\,;:"]+`;
const domainLabel = String.raw`[^\s\x00-\x1f\x7f@<>()[\]\\,;:".]+`;
const bareAddress = new RegExp(String.raw`^${localPart}@${domainLabel}(?:\.${domainLabel})*$`, 'u');
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const plainDisplayName = /^[^\x00-\x1f\x7f<>()[\]\\,;:"@]*$/u;
/** RFC 5322 section 3.6.8: printable US-ASCII except the colon. */
const headerName = /^[\x21-\x39\x3b-\x7e]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing CR, LF and the other controls is the point
const lineBreakOrControl = /[\x00-\x08\x0a-\x1f\x7f]/;
/** RFC 5321 section 4.5.3.1: 64 octets of local part, 255 of domain. */
const maxAddressLength = 320;

/** Headers the mailer writes itself; letting a caller set them would allow spoofing or extra recipients. */
const reservedHeaders = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'return-path',
]);

function invalid(field: string, message: string): TollgateError {
  return new TollgateError('validation_failed', message, { details: { field } });
}

/** True when nodemailer reads `text` as exactly `address` and nothing else. */
function parsesAsExactly(text: string, address: string): boolean {
  const parsed = addressparser(text);
  return parsed.length === 1 && parsed[0] !== undefined && 'address' in parsed[0] && parsed[0].address === address;
}

function isBareAddress(text: string): boolean {
  return text.length <= maxAddressLength && bareAddress.test(text) && parsesAsExactly(text, text);
}

/** Refuses anything that could add a header line or a recipient: the checks run before any transport. */
export function validateOutgoingMail(message: OutgoingMail): void {
  if (typeof message.to !== 'string' || !isBareAddress(message.to)) {
    throw invalid('to', 'the recipient must be one email address, like alice@example.com');
  }
  if (typeof message.subject !== 'string' || lineBreakOrControl.test(message.subject)) {
    throw invalid('subject', 'the subject must be one line of text');
  }
  if (typeof message.text !== 'string') throw invalid('text', 'the text body must be a string');
  if (message.html !== undefined && typeof message.html !== 'string') {
    throw invalid('html', 'the html body must be a string');
  }
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (!headerName.test(name) || reservedHeaders.has(name.toLowerCase())) {
      throw invalid('headers', `the header name ${JSON.stringify(name)} is not allowed`);
    }
    if (typeof value !== 'string' || lineBreakOrControl.test(value)) {
      throw invalid('headers', `the ${name} header must be one line of text`);
    }
  }
}

/** `Name <address>` or a bare address; anything else is refused at start as a configuration error. */
function checkFrom(from: string): void {
  const match = /^(?:([^<>]*?)\s*<([^<>]+)>|([^<>]+))$/u.exec(typeof from === 'string' ? from.trim() : '');
  const name = match?.[1] ?? '';
  const address = match?.[2] ?? match?.[3] ?? '';
  if (!match || !plainDisplayName.test(name) || !isBareAddress(address) || !parsesAsExactly(from, address)) {
    throw new TollgateError(
      'config_invalid',
      'TOLLGATE_MAIL_FROM must be one email address, optionally with a name, like Tollgate <no-reply@example.com>',
      { details: { variable: 'TOLLGATE_MAIL_FROM' } },
    );
  }
}

/** The SMTP URL with its password (and any query options) left out, for logs and status output. */
function describeSmtpUrl(smtpUrl: string): string {
  let url: URL | undefined;
  try {
    url = new URL(smtpUrl);
  } catch {
    url = undefined;
  }
  if (!url || !['smtp:', 'smtps:'].includes(url.protocol) || url.hostname === '') {
    // Never echo the value: it may hold a password.
    throw new TollgateError(
      'config_invalid',
      'SMTP_URL must be an smtp:// or smtps:// URL, like smtps://user:password@smtp.example.com:465',
      { details: { variable: 'SMTP_URL' } },
    );
  }
  const user = url.username === '' ? '' : `${url.username}@`;
  return `${url.protocol}//${user}${url.host}`;
}

interface NodemailerFailure {
  code?: string;
  responseCode?: number;
  command?: string;
  message?: string;
}

function reasonFor(error: NodemailerFailure): string {
  switch (error.code) {
    case 'EAUTH':
    case 'ENOAUTH':
      return 'the mail server refused the login';
    case 'ETIMEDOUT':
    case 'EABORT':
      return 'the mail server did not answer in time';
    case 'EENVELOPE':
    case 'EMESSAGE':
      return 'the mail server refused the message';
    case 'ETLS':
      return 'the TLS connection to the mail server failed';
    default:
      return 'the mail server could not be reached';
  }
}

/** Builds the messages; both transports share it so a message reads the same wherever it goes. */
const safeTransportOptions = {
  // Content is always given as strings; never let a value be read as a file path or a URL.
  disableFileAccess: true,
  disableUrlAccess: true,
  maxRecipients: 1,
} as const;

export function createMailer(options: CreateMailerOptions): Mailer {
  checkFrom(options.from);
  return options.smtpUrl === undefined
    ? createFilesMailer(options.from, resolve(options.mailDir), options.logger)
    : createSmtpMailer(options.smtpUrl, options.from, options.logger);
}

function createSmtpMailer(smtpUrl: string, from: string, logger: Logger): Mailer {
  const location = describeSmtpUrl(smtpUrl);
  const transporter = createTransport({
    ...safeTransportOptions,
    // Query options in the URL (e.g. ?requireTLS=true) still apply; nodemailer reads them.
    url: smtpUrl,
    pool: true,
    connectionTimeout: connectionTimeoutMs,
    greetingTimeout: greetingTimeoutMs,
    socketTimeout: socketTimeoutMs,
  });
  let closed = false;

  function failure(error: unknown, doing: string): TollgateError {
    const detail = (error ?? {}) as NodemailerFailure;
    const reason = reasonFor(detail);
    // The content stays out of the log (a message may carry a token); the server's reply may name the recipient.
    logger.warn(
      { transport: 'smtp', location, code: detail.code, responseCode: detail.responseCode, command: detail.command },
      `${doing} through ${location} failed: ${detail.message ?? String(error)}`,
    );
    return new TollgateError('mail_failed', `could not send the email: ${reason}`, {
      hint: 'check SMTP_URL and that the mail server accepts connections and the login from this host',
      cause: error,
    });
  }

  return {
    transport: 'smtp',
    location,
    async send(message) {
      if (closed) throw new Error('the mailer is closed');
      validateOutgoingMail(message);
      try {
        const info = await transporter.sendMail({
          from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          ...(message.html === undefined ? {} : { html: message.html }),
          ...(message.headers === undefined ? {} : { headers: message.headers }),
          signal: AbortSignal.timeout(sendDeadlineMs),
        });
        logger.debug({ transport: 'smtp', location, messageId: info.messageId }, `sent an email through ${location}`);
        return { messageId: info.messageId };
      } catch (error) {
        throw failure(error, 'sending an email');
      }
    },
    async verify() {
      if (closed) throw new Error('the mailer is closed');
      try {
        await transporter.verify();
      } catch (error) {
        throw failure(error, 'checking the mail server');
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      transporter.close();
    },
  };
}

function createFilesMailer(from: string, mailDir: string, logger: Logger): Mailer {
  const composer = createTransport({
    ...safeTransportOptions,
    streamTransport: true,
    buffer: true,
    // RFC 5322 section 2.1: lines end in CRLF.
    newline: 'windows',
  });
  let checkedPermissions = false;

  function failure(error: unknown): TollgateError {
    logger.warn({ transport: 'files', location: mailDir, err: error }, `could not write an email to ${mailDir}`);
    return new TollgateError('mail_failed', 'could not send the email: the mail directory is not writable', {
      hint: `check that ${mailDir} can be created and written, or set SMTP_URL`,
      cause: error,
    });
  }

  async function prepareDirectory(): Promise<void> {
    // Recreated every time, so clearing the folder while Tollgate runs is harmless.
    await mkdir(mailDir, { recursive: true, mode: 0o700 });
    if (checkedPermissions || process.platform === 'win32') return;
    checkedPermissions = true;
    // Never chmod: the directory may be one the operator chose (and shares) on purpose.
    const { mode } = await stat(mailDir);
    if ((mode & 0o077) !== 0) {
      logger.warn(
        { path: mailDir, mode: `0${(mode & 0o777).toString(8)}` },
        `${mailDir} can be read by other users, and emails hold sign-in links: restrict it with chmod 700 ${mailDir}`,
      );
    }
  }

  return {
    transport: 'files',
    location: mailDir,
    async send(message) {
      validateOutgoingMail(message);
      const info = await composer.sendMail({
        from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html === undefined ? {} : { html: message.html }),
        ...(message.headers === undefined ? {} : { headers: message.headers }),
      });
      if (!Buffer.isBuffer(info.message)) throw new Error('unreachable: the buffer option yields a Buffer');
      // Colons are not allowed in Windows file names; the timestamp keeps the folder in sending order.
      const name = `${new Date().toISOString().replace(/:/g, '-')}-${randomBytes(4).toString('hex')}.eml`;
      const path = join(mailDir, name);
      // Written under a hidden name first, so nothing watching the folder sees half a message.
      const temporary = join(mailDir, `.${name}.tmp`);
      try {
        await prepareDirectory();
        const handle = await open(temporary, 'wx', 0o600);
        try {
          await handle.writeFile(info.message);
        } finally {
          await handle.close();
        }
        await rename(temporary, path);
      } catch (error) {
        await unlink(temporary).catch(() => undefined);
        throw failure(error);
      }
      // Only the path: the body may hold a token, and the file is where a developer reads it.
      logger.info(
        { transport: 'files', path, messageId: info.messageId },
        `wrote an email to ${path} (set SMTP_URL to deliver email)`,
      );
      return { messageId: info.messageId, path };
    },
    async verify() {
      try {
        await prepareDirectory();
        await access(mailDir, constants.W_OK);
      } catch (error) {
        throw failure(error);
      }
    },
    async close() {
      // Nothing held open between messages.
    },
  };
}

import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type AddressObject, type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import { createLogger } from '../logging/logger.js';
import { createMailer, type Mailer, type OutgoingMail } from './mailer.js';

const from = 'Tollgate <no-reply@tollgate.test>';
const user = 'tollgate';
const password = 'correct horse battery staple';
const token = 'tg_verify_6f1c0f3e9b2a4d7c8e5f';

const verification: OutgoingMail = {
  to: 'alice@example.com',
  subject: 'Verify your email address',
  text: `Open this link to verify your address: https://tollgate.test/verify?token=${token}\n`,
  html: `<p><a href="https://tollgate.test/verify?token=${token}">Verify your address</a></p>`,
  headers: { 'Auto-Submitted': 'auto-generated', 'X-Tollgate-Purpose': 'email_verification' },
};

/** Every way a caller could try to add a header line or a recipient; each must be refused. */
const injectionAttempts: [string, OutgoingMail][] = [
  ['a second recipient after a comma', { ...verification, to: 'alice@example.com, mallory@evil.test' }],
  ['a second recipient after a semicolon', { ...verification, to: 'alice@example.com; mallory@evil.test' }],
  ['a Bcc line in the recipient', { ...verification, to: 'alice@example.com\r\nBcc: mallory@evil.test' }],
  ['a bare LF in the recipient', { ...verification, to: 'alice@example.com\nBcc: mallory@evil.test' }],
  ['a display name hiding another address', { ...verification, to: 'alice@example.com <mallory@evil.test>' }],
  ['a group of recipients', { ...verification, to: 'friends: alice@example.com, mallory@evil.test;' }],
  ['no address at all', { ...verification, to: 'alice' }],
  ['a Bcc line in the subject', { ...verification, subject: 'Verify\r\nBcc: mallory@evil.test' }],
  ['a bare LF in the subject', { ...verification, subject: 'Verify\nBcc: mallory@evil.test' }],
  ['a line break in a header value', { ...verification, headers: { 'X-Note': 'ok\r\nBcc: mallory@evil.test' } }],
  ['a colon in a header name', { ...verification, headers: { 'Bcc: mallory@evil.test\r\nX-Note': 'x' } }],
  ['a Bcc header', { ...verification, headers: { Bcc: 'mallory@evil.test' } }],
  ['a From header', { ...verification, headers: { from: 'Security <security@bank.test>' } }],
];

function captureLogger() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    logger: createLogger({ level: 'debug', destination: stream }),
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { level: string; msg: string; path?: string }),
  };
}

async function expectTollgateError(action: Promise<unknown>, code: string): Promise<TollgateError> {
  const error = await action.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(TollgateError);
  expect((error as TollgateError).code).toBe(code);
  return error as TollgateError;
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  return (Array.isArray(field) ? field : field ? [field] : []).flatMap((object) =>
    object.value.map((entry) => entry.address ?? ''),
  );
}

/** A port nothing listens on: bound once to be sure it was free, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Received {
  mailFrom: string;
  rcptTo: string[];
  mail: ParsedMail;
}

describe('createMailer over SMTP', () => {
  const received: Received[] = [];
  let server: SMTPServer;
  let port: number;
  const mailers: Mailer[] = [];

  function smtpMailer(url: string, logger = captureLogger().logger): Mailer {
    const mailer = createMailer({ smtpUrl: url, from, mailDir: join(tmpdir(), 'unused'), logger });
    mailers.push(mailer);
    return mailer;
  }

  beforeAll(async () => {
    server = new SMTPServer({
      logger: false,
      // Plain TCP on loopback: the test is about SMTP, not TLS.
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: false,
      onAuth(auth, _session, callback) {
        if (auth.username === user && auth.password === password) callback(null, { user: auth.username });
        else callback(new Error('Invalid username or password'));
      },
      onData(stream, session, callback) {
        simpleParser(stream).then(
          (mail) => {
            received.push({
              mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              rcptTo: session.envelope.rcptTo.map((recipient) => recipient.address),
              mail,
            });
            callback();
          },
          (error: Error) => callback(error),
        );
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    received.length = 0;
  });

  afterEach(async () => {
    await Promise.all(mailers.splice(0).map((mailer) => mailer.close()));
  });

  it('delivers a message with the right sender, recipient, subject and bodies', async () => {
    const mailer = smtpMailer(`smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`);
    expect(mailer.transport).toBe('smtp');

    const result = await mailer.send(verification);

    expect(received).toHaveLength(1);
    const [delivery] = received;
    expect(delivery?.mailFrom).toBe('no-reply@tollgate.test');
    expect(delivery?.rcptTo).toEqual(['alice@example.com']);
    const mail = delivery?.mail;
    expect(mail?.from?.value).toEqual([{ address: 'no-reply@tollgate.test', name: 'Tollgate' }]);
    expect(addresses(mail?.to)).toEqual(['alice@example.com']);
    expect(mail?.subject).toBe('Verify your email address');
    expect(mail?.text).toBe(verification.text);
    expect(mail?.html).toContain(`token=${token}`);
    expect(mail?.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail?.headers.get('x-tollgate-purpose')).toBe('email_verification');
    expect(mail?.messageId).toBe(result.messageId);
    expect(result.path).toBeUndefined();
  });

  it('reports where mail goes without the password', () => {
    const mailer = smtpMailer(`smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`);
    expect(mailer.location).toBe(`smtp://${user}@127.0.0.1:${port}`);
    const tls = smtpMailer('smtps://mailer%40example.com:s3cret@smtp.example.com:465?requireTLS=true');
    expect(tls.location).toBe('smtps://mailer%40example.com@smtp.example.com:465');
    expect(tls.location).not.toContain('s3cret');
  });

  it('refuses an SMTP_URL that is not smtp:// or smtps:// without echoing it', () => {
    for (const url of ['http://user:hunter2@mail.example.com', 'not a url hunter2', 'smtp://']) {
      let error: unknown;
      try {
        createMailer({ smtpUrl: url, from, mailDir: tmpdir(), logger: captureLogger().logger });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(TollgateError);
      expect((error as TollgateError).code).toBe('config_invalid');
      expect((error as TollgateError).message).toContain('SMTP_URL');
      expect((error as TollgateError).message).not.toContain('hunter2');
    }
  });

  it('fails with mail_failed when the server refuses the login, and delivers nothing', async () => {
    const log = captureLogger();
    const mailer = smtpMailer(`smtp://${user}:wrong-password@127.0.0.1:${port}`, log.logger);

    const error = await expectTollgateError(mailer.send(verification), 'mail_failed');

    expect(error.status).toBe(502);
    expect(error.message).toBe('could not send the email: the mail server refused the login');
    expect(received).toHaveLength(0);
    expect(log.text()).not.toContain('wrong-password');
    expect(log.text()).not.toContain(token);
  });

  it('fails with mail_failed quickly when nothing listens on the port', async () => {
    const mailer = smtpMailer(`smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${await closedPort()}`);
    const started = performance.now();

    const error = await expectTollgateError(mailer.send(verification), 'mail_failed');

    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error.message).toBe('could not send the email: the mail server could not be reached');
  });

  it('honours ?requireTLS=true in SMTP_URL: no login in plain text, nothing sent', async () => {
    const log = captureLogger();
    const mailer = smtpMailer(
      `smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}?requireTLS=true`,
      log.logger,
    );

    const error = await expectTollgateError(mailer.send(verification), 'mail_failed');

    expect(error.message).toBe('could not send the email: the TLS connection to the mail server failed');
    expect(received).toHaveLength(0);
    expect(log.text()).not.toContain(password);
  });

  it.each(injectionAttempts)('refuses %s with validation_failed and sends nothing', async (_, message) => {
    const mailer = smtpMailer(`smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`);

    await expectTollgateError(mailer.send(message), 'validation_failed');

    // A message that did go out would have arrived by the time a later one has.
    await mailer.send({ to: 'bob@example.com', subject: 'after', text: 'after' });
    expect(received.map((delivery) => delivery.rcptTo)).toEqual([['bob@example.com']]);
  });

  it('verifies a reachable server with good credentials', async () => {
    await expect(
      smtpMailer(`smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`).verify(),
    ).resolves.toBeUndefined();
  });

  it('fails verification with mail_failed for a closed port or wrong credentials', async () => {
    const closed = smtpMailer(`smtp://${user}:${encodeURIComponent(password)}@127.0.0.1:${await closedPort()}`);
    await expectTollgateError(closed.verify(), 'mail_failed');
    const refused = smtpMailer(`smtp://${user}:nope@127.0.0.1:${port}`);
    const error = await expectTollgateError(refused.verify(), 'mail_failed');
    expect(error.message).toContain('refused the login');
  });
});

describe('createMailer writing files (no SMTP_URL)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-mail-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a parseable .eml in a private directory and logs its path but not its content', async () => {
    const mailDir = join(dir, 'state', 'mail');
    const log = captureLogger();
    const mailer = createMailer({ from, mailDir, logger: log.logger });
    expect(mailer.transport).toBe('files');
    expect(mailer.location).toBe(mailDir);

    const result = await mailer.send(verification);

    expect(result.path).toBeDefined();
    const path = result.path ?? '';
    expect(await readdir(mailDir)).toEqual([path.slice(mailDir.length + 1)]);
    expect(path.slice(mailDir.length + 1)).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-[0-9a-f]{8}\.eml$/);
    const raw = await readFile(path);
    expect(raw.toString('latin1')).toMatch(/^[^\n]*\r\n/);
    const mail = await simpleParser(raw);
    expect(mail.from?.value).toEqual([{ address: 'no-reply@tollgate.test', name: 'Tollgate' }]);
    expect(addresses(mail.to)).toEqual(['alice@example.com']);
    expect(mail.subject).toBe('Verify your email address');
    expect(mail.text).toBe(verification.text);
    expect(mail.html).toContain(`token=${token}`);
    expect(mail.messageId).toBe(result.messageId);

    if (process.platform !== 'win32') {
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(mailDir)).mode & 0o777).toBe(0o700);
    }
    expect(log.lines()).toEqual([expect.objectContaining({ level: 'info', path, msg: expect.stringContaining(path) })]);
    expect(log.text()).not.toContain(token);
    expect(log.text()).not.toContain('Verify your');
  });

  it('names each message uniquely, in sending order', async () => {
    const mailer = createMailer({ from, mailDir: dir, logger: captureLogger().logger });
    const paths: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      paths.push((await mailer.send({ ...verification, subject: `message ${index}` })).path ?? '');
    }
    expect(new Set(paths).size).toBe(3);
    const files = (await readdir(dir)).sort();
    const subjects = await Promise.all(
      files.map(async (file) => (await simpleParser(await readFile(join(dir, file)))).subject),
    );
    expect(subjects).toEqual(['message 0', 'message 1', 'message 2']);
  });

  it.each(injectionAttempts)('refuses %s with validation_failed and writes nothing', async (_, message) => {
    const mailDir = join(dir, 'mail');
    const mailer = createMailer({ from, mailDir, logger: captureLogger().logger });

    await expectTollgateError(mailer.send(message), 'validation_failed');

    expect(await readdir(mailDir).catch(() => [])).toEqual([]);
  });

  it('verifies that the directory can be written, creating it', async () => {
    const mailDir = join(dir, 'mail');
    await createMailer({ from, mailDir, logger: captureLogger().logger }).verify();
    expect((await stat(mailDir)).isDirectory()).toBe(true);
  });

  it('fails with mail_failed when the directory cannot be created', async () => {
    // A path below a regular file can never become a directory, whoever runs the test (root included).
    const file = join(dir, 'not-a-directory');
    await writeFile(file, '');
    const mailer = createMailer({ from, mailDir: join(file, 'mail'), logger: captureLogger().logger });

    await expectTollgateError(mailer.verify(), 'mail_failed');
    await expectTollgateError(mailer.send(verification), 'mail_failed');
  });

  it('refuses a From that is not one address', () => {
    for (const bad of [
      '',
      'no-reply',
      'a@example.com, b@example.com',
      'Tollgate <no-reply@example.com>\r\nBcc: mallory@evil.test',
      'a@example.com <b@example.com>',
      'Tollgate <>',
    ]) {
      let error: unknown;
      try {
        createMailer({ from: bad, mailDir: dir, logger: captureLogger().logger });
      } catch (caught) {
        error = caught;
      }
      expect(error, bad).toBeInstanceOf(TollgateError);
      expect((error as TollgateError).code).toBe('config_invalid');
      expect((error as TollgateError).message).toContain('TOLLGATE_MAIL_FROM');
    }
    for (const good of ['no-reply@localhost', 'Tollgate <no-reply@localhost>', 'Acme Billing <billing@acme.example>']) {
      expect(createMailer({ from: good, mailDir: dir, logger: captureLogger().logger }).transport).toBe('files');
    }
  });
});

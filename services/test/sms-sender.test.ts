import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TollgateError } from '../src/errors/tollgate-error.js';
import { createLogger } from '../src/logging/logger.js';
import { createSmsSender } from '../src/sms/create-sms-sender.js';
import { TwilioSmsSender } from '../src/sms/twilio-sms-sender.js';
import { silentLogger } from './support/backends.js';
import { invalidTwilioNumber, startTwilioServer, type TwilioServer } from './support/twilio.js';

let twilio: TwilioServer;
beforeAll(async () => {
  twilio = await startTwilioServer();
});
afterAll(() => twilio.close());

const to = '+15551234567';

/** A logger whose lines a test can read. */
function capturingLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), text: () => lines.join('') };
}

async function failure(promise: Promise<unknown>): Promise<TollgateError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(TollgateError);
  return error as TollgateError;
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the Twilio SMS sender', () => {
  it("creates a message with Twilio's protocol: Basic auth, a form body, the sid of the 201 answer", async () => {
    const sender = createSmsSender({ twilio: twilio.settings(), smsDir: 'unused', logger: silentLogger() });
    expect(sender.transport).toBe('twilio');
    const sent = await sender.send({ to, body: '123456 is your Tollgate sign-in code.' });
    expect(sent.messageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(twilio.messages.at(-1)).toEqual({
      sid: sent.messageId,
      accountSid: twilio.accountSid,
      to,
      from: twilio.from,
      messagingServiceSid: undefined,
      body: '123456 is your Tollgate sign-in code.',
    });
    const request = twilio.requests.at(-1);
    expect(request).toMatchObject({
      method: 'POST',
      path: `/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`,
      contentType: 'application/x-www-form-urlencoded',
    });
    const basic = Buffer.from(`${twilio.accountSid}:${twilio.authToken}`).toString('base64');
    expect(request?.authorization).toBe(`Basic ${basic}`);
  });

  it('sends through a messaging service when TWILIO_FROM is an MG sid', async () => {
    const service = `MG${'a'.repeat(32)}`;
    const sender = new TwilioSmsSender({ ...twilio.settings({ from: service }), logger: silentLogger() });
    await sender.send({ to, body: 'through a service' });
    expect(twilio.messages.at(-1)).toMatchObject({ from: undefined, messagingServiceSid: service });
  });

  it('answers invalid_phone for a number Twilio cannot deliver to, and keeps the number out of the log', async () => {
    const { logger, text } = capturingLogger();
    const sender = new TwilioSmsSender({ ...twilio.settings(), logger });
    const before = twilio.messages.length;
    const error = await failure(sender.send({ to: invalidTwilioNumber, body: 'never delivered' }));
    expect(error.code).toBe('invalid_phone');
    expect(error.status).toBe(400);
    expect(error.details).toEqual({ provider: 'twilio', provider_status: 400, provider_code: 21211 });
    expect(twilio.messages.length).toBe(before);
    expect(text()).toContain('21211');
    expect(text()).not.toContain(invalidTwilioNumber);
    expect(text()).not.toContain(invalidTwilioNumber.slice(1));
  });

  it('answers sms_failed when Twilio refuses the credentials, and never logs the token', async () => {
    const { logger, text } = capturingLogger();
    const wrongToken = 'f'.repeat(32);
    const sender = new TwilioSmsSender({ ...twilio.settings({ authToken: wrongToken }), logger });
    const error = await failure(sender.send({ to, body: 'refused' }));
    expect(error.code).toBe('sms_failed');
    expect(error.status).toBe(502);
    expect(error.message).toBe('could not send the text message: the SMS provider refused our credentials');
    expect(error.details).toMatchObject({ provider_code: 20003, provider_status: 401 });
    expect(text()).not.toContain(wrongToken);
    expect(text()).not.toContain(twilio.authToken);
  });

  it('gives up with sms_failed when Twilio does not answer in time, or cannot be reached', async () => {
    const slow = new TwilioSmsSender({ ...twilio.settings(), logger: silentLogger(), timeoutMs: 200 });
    twilio.stall = true;
    try {
      const started = Date.now();
      const error = await failure(slow.send({ to, body: 'stalled' }));
      expect(error.code).toBe('sms_failed');
      expect(error.message).toMatch(/did not answer in time/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      twilio.stall = false;
    }
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const unreachable = new TwilioSmsSender({ ...twilio.settings({ apiBase: closed }), logger: silentLogger() });
    const error = await failure(unreachable.send({ to, body: 'nobody home' }));
    expect(error.code).toBe('sms_failed');
    expect(error.message).toMatch(/could not be reached/);
  });

  it('refuses a recipient that is not E.164 or an empty text before anything is sent', async () => {
    const sender = new TwilioSmsSender({ ...twilio.settings(), logger: silentLogger() });
    const requests = twilio.requests.length;
    expect((await failure(sender.send({ to: '5551234567', body: 'x' }))).code).toBe('validation_failed');
    expect((await failure(sender.send({ to: '+15551234567,+15557654321', body: 'x' }))).code).toBe('validation_failed');
    expect((await failure(sender.send({ to, body: '  ' }))).code).toBe('validation_failed');
    expect(twilio.requests.length).toBe(requests);
  });
});

describe('the files SMS sender (the embedded default)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-sms-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes each message as a private .txt file and logs its path, not its text', async () => {
    const { logger, text } = capturingLogger();
    const smsDir = join(dir, 'sms');
    const sender = createSmsSender({ smsDir, logger });
    expect(sender).toMatchObject({ transport: 'files', location: smsDir });
    const sent = await sender.send({ to, body: '654321 is your Tollgate sign-in code.' });
    expect(sent.path).toMatch(/\.txt$/);
    const file = await readFile(sent.path ?? '', 'utf8');
    expect(file).toMatch(
      /^To: \+15551234567\nDate: \d{4}-\d{2}-\d{2}T[\d:.]+Z\n\n654321 is your Tollgate sign-in code\.\n$/,
    );
    if (process.platform !== 'win32') {
      expect((await stat(sent.path ?? '')).mode & 0o777).toBe(0o600);
      expect((await stat(smsDir)).mode & 0o777).toBe(0o700);
    }
    expect(text()).toContain(sent.path);
    expect(text()).not.toContain('654321');
  });
});

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { createMailer, type Mailer } from '../../src/mail/mailer.js';
import { silentLogger } from './backends.js';

export interface MailFolder {
  mailer: Mailer;
  dir: string;
  /** The raw text of every message written so far, oldest first. */
  messages(): Promise<string[]>;
  /** Every message so far, decoded (bodies are often quoted-printable, with soft line breaks). */
  parsed(): Promise<{ to: string; subject: string; text: string }[]>;
  dispose(): Promise<void>;
}

/** The embedded-default mailer writing .eml files to a temporary folder a test can read. */
export async function createTestMailer(): Promise<MailFolder> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-mail-'));
  const mailer = createMailer({ from: 'Tollgate <no-reply@localhost>', mailDir: dir, logger: silentLogger() });
  const messages = async () => {
    const files = (await readdir(dir)).filter((file) => file.endsWith('.eml')).sort();
    return Promise.all(files.map((file) => readFile(join(dir, file), 'utf8')));
  };
  return {
    mailer,
    dir,
    messages,
    async parsed() {
      const raw = await messages();
      return Promise.all(
        raw.map(async (message) => {
          const mail = await simpleParser(message);
          const to = Array.isArray(mail.to) ? mail.to.map((address) => address.text).join(', ') : (mail.to?.text ?? '');
          return { to, subject: mail.subject ?? '', text: mail.text ?? '' };
        }),
      );
    },
    async dispose() {
      await mailer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

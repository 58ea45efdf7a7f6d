import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import { createLogger } from '../logging/logger.js';
import { createKeyring, keyIdOf, parseMasterKey, resolveMasterKeyring } from './master-keyring.js';

const context = 'totp_seed:user:7d6c1a0e-8f7b-4a51-9c43-2f1e0b9d8a76';

function expectTollgateError(action: () => unknown, code: string): TollgateError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError);
    expect((error as TollgateError).code).toBe(code);
    return error as TollgateError;
  }
  throw new Error(`expected a ${code} error`);
}

/** Replaces one base64url field of a sealed value with the same bytes, one bit flipped. */
function flipBit(sealed: string, field: 3 | 4): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[field] ?? '', 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 1;
  parts[field] = bytes.toString('base64url');
  return parts.join('.');
}

describe('createKeyring', () => {
  const keyring = createKeyring({ current: randomBytes(32) });

  it('round-trips a secret, as text and as bytes', () => {
    const sealed = keyring.encrypt('JBSWY3DPEHPK3PXP', context);
    expect(sealed).toMatch(/^tgs1\.[0-9a-f]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(sealed.split('.')[1]).toBe(keyring.currentKeyId);
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(keyring.decryptText(sealed, context)).toBe('JBSWY3DPEHPK3PXP');

    const bytes = randomBytes(64);
    expect(keyring.decrypt(keyring.encrypt(bytes, context), context).equals(bytes)).toBe(true);
    expect(keyring.decryptText(keyring.encrypt('', context), context)).toBe('');
  });

  it('seals the same plaintext differently every time', () => {
    expect(keyring.encrypt('same secret', context)).not.toBe(keyring.encrypt('same secret', context));
  });

  it('refuses a tampered ciphertext or tag as secret_corrupt', () => {
    const sealed = keyring.encrypt('webhook-secret-value', context);
    expectTollgateError(() => keyring.decrypt(flipBit(sealed, 3), context), 'secret_corrupt');
    expectTollgateError(() => keyring.decrypt(flipBit(sealed, 4), context), 'secret_corrupt');
  });

  it('refuses a value copied from another record (wrong context) as secret_corrupt', () => {
    const sealed = keyring.encrypt('JBSWY3DPEHPK3PXP', context);
    expectTollgateError(() => keyring.decrypt(sealed, 'totp_seed:user:another-user'), 'secret_corrupt');
  });

  it('refuses malformed values as secret_corrupt', () => {
    const sealed = keyring.encrypt('x', context);
    const [, keyId, iv, ciphertext, tag] = sealed.split('.');
    for (const bad of [
      '',
      'plaintext',
      sealed.replace('tgs1', 'tgs2'),
      `tgs1.${keyId}.${iv}.${ciphertext}`,
      `${sealed}.extra`,
      `tgs1.${keyId}.${iv?.slice(2)}.${ciphertext}.${tag}`,
      `tgs1.${keyId}.${iv}.${ciphertext}.${tag?.slice(4)}`,
      `tgs1.${keyId}.${iv}.${ciphertext}!.${tag}`,
    ]) {
      expectTollgateError(() => keyring.decrypt(bad, context), 'secret_corrupt');
    }
  });

  it('names a value sealed under a key it does not have as secret_key_unknown, with a rotation hint', () => {
    const other = createKeyring({ current: randomBytes(32) });
    const error = expectTollgateError(
      () => keyring.decrypt(other.encrypt('x', context), context),
      'secret_key_unknown',
    );
    expect(error.hint).toContain('TOLLGATE_MASTER_KEY_PREVIOUS');
    expect(error.details).toEqual({ keyId: other.currentKeyId });
    expect(error.status).toBe(500);
  });

  it('reads values sealed under a previous key during rotation, and re-encrypts them under the new one', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealedUnderOld = createKeyring({ current: oldKey }).encrypt('oauth-refresh-token', context);

    const rotated = createKeyring({ current: newKey, previous: [oldKey] });
    expect(rotated.currentKeyId).toBe(keyIdOf(newKey));
    expect(rotated.keyIds).toEqual([keyIdOf(newKey), keyIdOf(oldKey)]);
    expect(rotated.isCurrent(sealedUnderOld)).toBe(false);
    expect(rotated.decryptText(sealedUnderOld, context)).toBe('oauth-refresh-token');

    const resealed = rotated.encrypt(rotated.decrypt(sealedUnderOld, context), context);
    expect(rotated.isCurrent(resealed)).toBe(true);
    // Once the old key is dropped, the re-encrypted value still opens.
    expect(createKeyring({ current: newKey }).decryptText(resealed, context)).toBe('oauth-refresh-token');
  });

  it('says a malformed value is not current', () => {
    expect(keyring.isCurrent('garbage')).toBe(false);
  });

  it('derives stable, purpose-specific keys from the current key', () => {
    const key = randomBytes(32);
    const a = createKeyring({ current: key });
    const b = createKeyring({ current: key, previous: [randomBytes(32)] });
    expect(a.deriveKey('jwt-signing')).toHaveLength(32);
    expect(a.deriveKey('jwt-signing').equals(b.deriveKey('jwt-signing'))).toBe(true);
    expect(a.deriveKey('jwt-signing').equals(a.deriveKey('session-cookies'))).toBe(false);
    expect(a.deriveKey('jwt-signing').equals(key)).toBe(false);
    expect(a.deriveKey('jwt-signing', 64)).toHaveLength(64);
    expect(
      createKeyring({ current: randomBytes(32) })
        .deriveKey('jwt-signing')
        .equals(a.deriveKey('jwt-signing')),
    ).toBe(false);
  });

  it('refuses keys that are not 32 bytes', () => {
    expectTollgateError(() => createKeyring({ current: randomBytes(16) }), 'config_invalid');
    expectTollgateError(
      () => createKeyring({ current: randomBytes(32), previous: [randomBytes(31)] }),
      'config_invalid',
    );
  });
});

describe('parseMasterKey', () => {
  const key = randomBytes(32);

  it('accepts base64 and base64url, padded or not, with surrounding whitespace', () => {
    expect(parseMasterKey(key.toString('base64')).equals(key)).toBe(true);
    expect(parseMasterKey(key.toString('base64url')).equals(key)).toBe(true);
    expect(parseMasterKey(`  ${key.toString('base64')}\n`).equals(key)).toBe(true);
  });

  it('refuses a 16-byte key, hex and garbage without echoing the value', () => {
    const short = randomBytes(16).toString('base64');
    const hex = key.toString('hex');
    const garbage = 'not a key at all, just a long sentence!!';
    for (const input of [short, hex, garbage, '', `${key.toString('base64')}AAAA`]) {
      const error = expectTollgateError(() => parseMasterKey(input), 'config_invalid');
      expect(error.message).toBe(
        'TOLLGATE_MASTER_KEY must be 32 random bytes in base64 (generate one with: openssl rand -base64 32)',
      );
      if (input !== '') expect(error.message).not.toContain(input);
    }
  });
});

describe('keyIdOf', () => {
  it('is 8 hex characters, stable for a key and different between keys', () => {
    const key = randomBytes(32);
    expect(keyIdOf(key)).toMatch(/^[0-9a-f]{8}$/);
    expect(keyIdOf(Buffer.from(key))).toBe(keyIdOf(key));
    expect(keyIdOf(randomBytes(32))).not.toBe(keyIdOf(key));
  });
});

describe('resolveMasterKeyring', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-keyring-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function captureLogger() {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(String(chunk));
        done();
      },
    });
    return {
      logger: createLogger({ level: 'info', destination: stream }),
      text: () => chunks.join(''),
      lines: () =>
        chunks
          .join('')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { level: string; msg: string }),
    };
  }

  it('generates a private key file once, then reads the same key without warning again', async () => {
    const dataDir = join(dir, 'nested', 'data');
    const path = join(dataDir, 'master.key');
    const first = captureLogger();
    const generated = await resolveMasterKeyring({ dataDir, logger: first.logger });
    expect(generated.generatedAt).toBe(path);
    expect(first.lines()).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: `generated a master key at ${path}; set TOLLGATE_MASTER_KEY (and keep it safe) in production`,
      }),
    ]);
    const fileText = await readFile(path, 'utf8');
    expect(first.text()).not.toContain(fileText.trim());
    if (process.platform !== 'win32') {
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    }
    // No temporary file is left behind.
    expect(await readdir(dataDir)).toEqual(['master.key']);

    const second = captureLogger();
    const again = await resolveMasterKeyring({ dataDir, logger: second.logger });
    expect(again.generatedAt).toBeUndefined();
    expect(again.keyring.currentKeyId).toBe(generated.keyring.currentKeyId);
    expect(second.lines()).toEqual([]);
    const sealed = generated.keyring.encrypt('survives a restart', context);
    expect(again.keyring.decryptText(sealed, context)).toBe('survives a restart');
  });

  it('gives two processes starting together the same key', async () => {
    const { logger, lines } = captureLogger();
    const results = await Promise.all(Array.from({ length: 5 }, () => resolveMasterKeyring({ dataDir: dir, logger })));
    expect(new Set(results.map((result) => result.keyring.currentKeyId)).size).toBe(1);
    expect(results.filter((result) => result.generatedAt !== undefined)).toHaveLength(1);
    expect(lines()).toHaveLength(1);
  });

  it.skipIf(process.platform === 'win32')('warns when the key file can be read by other users', async () => {
    const path = join(dir, 'master.key');
    await writeFile(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o644 });
    const { logger, lines } = captureLogger();
    const { generatedAt } = await resolveMasterKeyring({ dataDir: dir, logger });
    expect(generatedAt).toBeUndefined();
    expect(lines()).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringContaining(path) })]);
  });

  it('prefers TOLLGATE_MASTER_KEY over the key file, and never writes one', async () => {
    const envKey = randomBytes(32);
    const { logger, lines } = captureLogger();
    const fromFile = await resolveMasterKeyring({ dataDir: dir, logger });
    const fromEnv = await resolveMasterKeyring({ current: envKey.toString('base64'), dataDir: dir, logger });
    expect(fromEnv.keyring.currentKeyId).toBe(keyIdOf(envKey));
    expect(fromEnv.keyring.currentKeyId).not.toBe(fromFile.keyring.currentKeyId);
    expect(fromEnv.generatedAt).toBeUndefined();
    expect(lines()).toHaveLength(1);

    const emptyDir = join(dir, 'unused');
    await resolveMasterKeyring({ current: envKey.toString('base64'), dataDir: emptyDir, logger });
    await expect(stat(emptyDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('adds the previous keys to the ring', async () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const { logger } = captureLogger();
    const { keyring } = await resolveMasterKeyring({
      current: newKey.toString('base64'),
      previous: [oldKey.toString('base64url')],
      dataDir: dir,
      logger,
    });
    expect(keyring.keyIds).toEqual([keyIdOf(newKey), keyIdOf(oldKey)]);
  });

  it('names the variable or the file holding an invalid key', async () => {
    const { logger } = captureLogger();
    await expect(
      resolveMasterKeyring({ current: randomBytes(32).toString('base64'), previous: ['short'], dataDir: dir, logger }),
    ).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/^TOLLGATE_MASTER_KEY_PREVIOUS /),
    });

    const path = join(dir, 'master.key');
    await writeFile(path, 'truncated', { mode: 0o600 });
    await expect(resolveMasterKeyring({ dataDir: dir, logger })).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringContaining(path),
    });
  });
});

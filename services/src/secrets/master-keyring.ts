import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';

/**
 * Secrets at rest (TOTP seeds, OAuth tokens, SSO client secrets, webhook secrets) are sealed with
 * AES-256-GCM under the master key. A sealed value names the key it was sealed under, so the key can
 * rotate: the old one stays in the ring as a "previous" key until every value is re-encrypted.
 *
 *   tgs1.<key id>.<iv>.<ciphertext>.<tag>     (iv, ciphertext and tag in base64url)
 */
export interface MasterKeyring {
  /** Id of the key new values are sealed under. */
  currentKeyId: string;
  /** Every key id the ring can open, current first. */
  keyIds: string[];
  /**
   * Seals a secret. `context` names where the value is stored (e.g. `totp_seed:user:<uuid>`) and is
   * authenticated with it, so a value copied into another row or column fails to decrypt.
   */
  encrypt(plaintext: string | Buffer, context: string): string;
  /** Opens a sealed value; throws `secret_key_unknown` or `secret_corrupt`. */
  decrypt(sealed: string, context: string): Buffer;
  /** `decrypt` for values that were sealed from a string. */
  decryptText(sealed: string, context: string): string;
  /** True when a well-formed value is sealed under the current key (false means: re-encrypt it). */
  isCurrent(sealed: string): boolean;
  /** A key for another purpose (e.g. signing JWTs), derived from the current master key. */
  deriveKey(purpose: string, length?: number): Buffer;
}

const masterKeyBytes = 32;
const ivBytes = 12;
const tagBytes = 16;
const formatTag = 'tgs1';
const masterKeyFileName = 'master.key';
const masterKeyAdvice = 'must be 32 random bytes in base64 (generate one with: openssl rand -base64 32)';

/**
 * Reads a master key from its text form: base64 or base64url of exactly 32 bytes. The error names
 * `variable` (or a file path) but never echoes the value.
 */
export function parseMasterKey(text: string, variable = 'TOLLGATE_MASTER_KEY'): Buffer {
  // 32 bytes are 43 base64 characters plus one '=' of padding, which is optional.
  const match = /^([A-Za-z0-9+/_-]{43})=?$/.exec(text.trim());
  const key = match?.[1] ? Buffer.from(match[1].replace(/-/g, '+').replace(/_/g, '/'), 'base64') : undefined;
  if (key?.length !== masterKeyBytes) {
    throw new TollgateError('config_invalid', `${variable} ${masterKeyAdvice}`, { details: { variable } });
  }
  return key;
}

/** A short, stable, non-secret name for a key: the first 8 hex characters of its SHA-256. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * The AES key is derived from the master key rather than being the master key itself, so that no
 * `deriveKey(purpose)` result (salt 'tollgate') can ever equal it: key separation by salt.
 */
function encryptionKeyFor(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, 'tollgate/secrets-at-rest', 'aes-256-gcm', 32));
}

function requireContext(context: string): void {
  // An empty context would silently drop the protection against values moved between rows.
  if (typeof context !== 'string' || context === '') {
    throw new TypeError('a secret needs a non-empty context, such as "totp_seed:user:<uuid>"');
  }
}

interface SealedParts {
  keyId: string;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

const base64url = /^[A-Za-z0-9_-]*$/;

function parseSealed(sealed: string): SealedParts | undefined {
  if (typeof sealed !== 'string') return undefined;
  const [format, keyId, iv, ciphertext, tag, ...rest] = sealed.split('.');
  if (format !== formatTag || keyId === undefined || !/^[0-9a-f]{8}$/.test(keyId) || rest.length > 0) return undefined;
  if (iv === undefined || ciphertext === undefined || tag === undefined) return undefined;
  if (!base64url.test(iv) || !base64url.test(ciphertext) || !base64url.test(tag)) return undefined;
  const parts = {
    keyId,
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
  if (parts.iv.length !== ivBytes || parts.tag.length !== tagBytes) return undefined;
  return parts;
}

function corrupt(): TollgateError {
  // One message whatever failed (format, tag, context): HTTP error bodies carry it, so it says nothing more.
  return new TollgateError(
    'secret_corrupt',
    'a stored secret could not be decrypted: it is damaged or belongs elsewhere',
    {
      hint: 'the value was altered, truncated, or copied from another record; it has to be set again',
    },
  );
}

/** A keyring over a current master key and the previous ones still needed to read old values. */
export function createKeyring(keys: { current: Buffer; previous?: Buffer[] }): MasterKeyring {
  const ring = new Map<string, { master: Buffer; aes: Buffer }>();
  for (const key of [keys.current, ...(keys.previous ?? [])]) {
    if (!Buffer.isBuffer(key) || key.length !== masterKeyBytes) {
      throw new TollgateError('config_invalid', `a master key ${masterKeyAdvice}`);
    }
    const id = keyIdOf(key);
    const existing = ring.get(id);
    if (existing) {
      // The same key listed twice (e.g. previous = current mid-rotation) is harmless; two different
      // keys sharing an id (a 1 in 2^32 chance) would make values ambiguous.
      if (existing.master.equals(key)) continue;
      throw new TollgateError('config_invalid', `two different master keys share the id ${id}`, {
        hint: 'generate a new key with: openssl rand -base64 32',
      });
    }
    // Copies, so a caller zeroing or reusing its buffer cannot change the ring.
    ring.set(id, { master: Buffer.from(key), aes: encryptionKeyFor(key) });
  }
  const currentKeyId = keyIdOf(keys.current);
  const current = ring.get(currentKeyId);
  if (!current) throw new Error('unreachable: the current key is always in the ring');

  function decrypt(sealed: string, context: string): Buffer {
    requireContext(context);
    const parts = parseSealed(sealed);
    if (!parts) throw corrupt();
    const entry = ring.get(parts.keyId);
    if (!entry) {
      throw new TollgateError(
        'secret_key_unknown',
        `a stored secret is encrypted under master key ${parts.keyId}, which is not configured`,
        {
          hint: 'during a key rotation, set TOLLGATE_MASTER_KEY_PREVIOUS to the old key until every secret is re-encrypted',
          details: { keyId: parts.keyId },
        },
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.aes, parts.iv, { authTagLength: tagBytes });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(parts.tag);
      return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
    } catch {
      throw corrupt();
    }
  }

  return {
    currentKeyId,
    keyIds: [...ring.keys()],
    encrypt(plaintext, context) {
      requireContext(context);
      // A random 96-bit IV per value; GCM stays safe for far more values than a control plane stores.
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv('aes-256-gcm', current.aes, iv, { authTagLength: tagBytes });
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
      const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [formatTag, currentKeyId, iv, ciphertext, tag]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.');
    },
    decrypt,
    decryptText(sealed, context) {
      return decrypt(sealed, context).toString('utf8');
    },
    isCurrent(sealed) {
      return parseSealed(sealed)?.keyId === currentKeyId;
    },
    deriveKey(purpose, length = 32) {
      if (typeof purpose !== 'string' || purpose === '') throw new TypeError('deriveKey needs a non-empty purpose');
      // HKDF-SHA256 (RFC 5869) can expand to at most 255 hash blocks.
      if (!Number.isInteger(length) || length < 1 || length > 255 * 32) {
        throw new RangeError('deriveKey length must be an integer from 1 to 8160 bytes');
      }
      return Buffer.from(hkdfSync('sha256', current.master, 'tollgate', purpose, length));
    },
  };
}

export interface ResolveMasterKeyringOptions {
  /** TOLLGATE_MASTER_KEY; undefined means the embedded default: a key file in `dataDir`. */
  current?: string;
  /** TOLLGATE_MASTER_KEY_PREVIOUS: older keys still needed to read values sealed under them. */
  previous?: string[];
  dataDir: string;
  logger: Logger;
}

/**
 * The keyring for this process. Without TOLLGATE_MASTER_KEY, the key lives in `<dataDir>/master.key`,
 * generated on first start, so the embedded mode works with no setup. The key is never logged.
 */
export async function resolveMasterKeyring(
  options: ResolveMasterKeyringOptions,
): Promise<{ keyring: MasterKeyring; generatedAt?: string }> {
  const previous = (options.previous ?? []).map((text) => parseMasterKey(text, 'TOLLGATE_MASTER_KEY_PREVIOUS'));
  if (options.current !== undefined) {
    return { keyring: createKeyring({ current: parseMasterKey(options.current), previous }) };
  }
  const path = join(options.dataDir, masterKeyFileName);
  const existing = await readMasterKeyFile(path, options.logger);
  if (existing) return { keyring: createKeyring({ current: existing, previous }) };

  const generated = await createMasterKeyFile(options.dataDir, path);
  if (generated === 'exists') {
    // Another process generated it between our read and our create: use theirs.
    const theirs = await readMasterKeyFile(path, options.logger);
    if (!theirs) throw new Error(`${path} disappeared while starting`);
    return { keyring: createKeyring({ current: theirs, previous }) };
  }
  options.logger.warn(
    { path },
    `generated a master key at ${path}; set TOLLGATE_MASTER_KEY (and keep it safe) in production`,
  );
  return { keyring: createKeyring({ current: generated, previous }), generatedAt: path };
}

/** The key in `path`, or undefined when there is no such file. Warns when others may read it. */
async function readMasterKeyFile(path: string, logger: Logger): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // Windows has no group/other permission bits to check.
  if (process.platform !== 'win32') {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      logger.warn(
        { path, mode: `0${(mode & 0o777).toString(8)}` },
        `${path} can be read by other users: restrict it with chmod 600 ${path}`,
      );
    }
  }
  return parseMasterKey(text, path);
}

/**
 * Writes a new random key to `path`, or returns 'exists' when another process got there first.
 * The key is written to a private temporary file and then hard-linked into place: the link is an
 * exclusive create that either fails with EEXIST or publishes a complete file, so a concurrent
 * reader never sees it half-written and two processes never both generate a key.
 */
async function createMasterKeyFile(dataDir: string, path: string): Promise<Buffer | 'exists'> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(masterKeyBytes);
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(`${key.toString('base64')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temporary, path);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw error;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ScryptParameters {
  /** CPU/memory cost, a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

/**
 * scrypt with N=2^15, r=8, p=1: 32 MiB per hash. Note OWASP's Password Storage Cheat Sheet asks for
 * at least N=2^17 (or, at the same 32 MiB, N=2^15 with p=3). Stored hashes name their parameters
 * and `needsRehash` upgrades them at the next login, so raising these later is safe.
 */
const currentParameters: ScryptParameters = { N: 2 ** 15, r: 8, p: 1 };
const saltBytes = 16;
const hashBytes = 32;
/** Enough for the current parameters (128 * r * (N + p + 2) bytes, about 32 MiB) with room to spare. */
const hashingMemory = 64 * 1024 * 1024;
/** A stored hash asking for more memory than this is refused rather than run (it could only be forged). */
const verifyMemoryCeiling = 256 * 1024 * 1024;

function scryptMemory({ N, r, p }: ScryptParameters): number {
  // OpenSSL's accounting: the B blocks (128 * r * p) plus V (128 * r * (N + 2)).
  return 128 * r * (N + p + 2);
}

function deriveHash(password: string, salt: Buffer, length: number, parameters: ScryptParameters, maxmem: number) {
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(password, salt, length, { ...parameters, maxmem }, (error, hash) => (error ? reject(error) : resolve(hash)));
  });
}

/**
 * NFKC first, so the same password typed on different keyboards or systems (composed or decomposed
 * accents, full-width forms) hashes the same, as NIST SP 800-63B section 5.1.1.2 recommends.
 */
function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Hashes a password for storage as `scrypt$v=1$N=32768,r=8,p=1$<salt>$<hash>` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(saltBytes);
  const hash = await deriveHash(normalizePassword(password), salt, hashBytes, currentParameters, hashingMemory);
  const { N, r, p } = currentParameters;
  return `scrypt$v=1$N=${N},r=${r},p=${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

interface StoredHash {
  parameters: ScryptParameters;
  salt: Buffer;
  hash: Buffer;
}

const storedHashFormat =
  /^scrypt\$v=1\$N=(\d{1,10}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** The parts of a stored hash, or undefined for anything malformed or too expensive to check. */
function parseStoredHash(encoded: string): StoredHash | undefined {
  if (typeof encoded !== 'string') return undefined;
  const match = storedHashFormat.exec(encoded);
  if (!match) return undefined;
  const parameters = { N: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  const salt = Buffer.from(match[4] ?? '', 'base64');
  const hash = Buffer.from(match[5] ?? '', 'base64');
  const { N, r, p } = parameters;
  const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || r < 1 || p < 1 || p > 16 || scryptMemory(parameters) > verifyMemoryCeiling) return undefined;
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined;
  return { parameters, salt, hash };
}

/**
 * Checks a password against a stored hash in constant time. Never throws: a malformed or unknown
 * encoding is simply not a match. `needsRehash` (only when the password matched) says the hash uses
 * weaker parameters than today's: store `hashPassword(password)` in its place.
 */
export async function verifyPassword(
  password: string,
  encoded: string,
): Promise<{ ok: boolean; needsRehash: boolean }> {
  const stored = parseStoredHash(encoded);
  if (!stored || typeof password !== 'string') return { ok: false, needsRehash: false };
  let candidate: Buffer;
  try {
    const maxmem = Math.max(hashingMemory, scryptMemory(stored.parameters) + 1024 * 1024);
    candidate = await deriveHash(
      normalizePassword(password),
      stored.salt,
      stored.hash.length,
      stored.parameters,
      maxmem,
    );
  } catch {
    return { ok: false, needsRehash: false };
  }
  const ok = timingSafeEqual(candidate, stored.hash);
  const { N, r, p } = stored.parameters;
  const weaker =
    N < currentParameters.N ||
    r < currentParameters.r ||
    p < currentParameters.p ||
    stored.salt.length < saltBytes ||
    stored.hash.length < hashBytes;
  return { ok, needsRehash: ok && weaker };
}

const minimumLength = 12;
const maximumLength = 256;
/** A shorter email local part (e.g. "al") would reject too many good passwords for little gain. */
const minimumEmailPartLength = 4;

/** `services/data/common-passwords.txt`: the same path from src/identity (tests) and dist/identity (built). */
const commonPasswordsFile = new URL('../../data/common-passwords.txt', import.meta.url);
let commonPasswords: Set<string> | undefined;

/** Loaded on first use (about 49,000 entries, 0.4 MB), so processes that never check a password skip it. */
function loadCommonPasswords(): Set<string> {
  if (commonPasswords === undefined) {
    const entries = new Set<string>();
    for (const line of readFileSync(fileURLToPath(commonPasswordsFile), 'utf8').split(/\r?\n/)) {
      if (line !== '' && !line.startsWith('#')) entries.add(line.toLowerCase());
    }
    commonPasswords = entries;
  }
  return commonPasswords;
}

/**
 * What is wrong with a new password, as short sentences about "the password"; empty when it is
 * acceptable. The rules follow NIST SP 800-63B section 5.1.1.2: a minimum length rather than
 * composition rules, a check against passwords known from breaches, and no context-specific words.
 */
export function passwordProblems(password: string, context: { email?: string; name?: string }): string[] {
  const normalized = normalizePassword(password);
  // Code points, not UTF-16 units: an emoji counts as one character, as a user would count it.
  const length = [...normalized].length;
  // Anything longer is refused before the other checks, which would only add noise.
  if (length > maximumLength) return [`must be at most ${maximumLength} characters`];
  const problems: string[] = [];
  if (length < minimumLength) problems.push(`must be at least ${minimumLength} characters`);
  const folded = normalized.toLowerCase();
  if (loadCommonPasswords().has(folded)) problems.push('is too common: it appears in lists of leaked passwords');
  const emailPart = emailLocalPart(context.email);
  if (emailPart !== undefined && [...emailPart].length >= minimumEmailPartLength && folded.includes(emailPart)) {
    problems.push('must not contain your email address');
  }
  const name = context.name?.normalize('NFKC').trim().toLowerCase();
  if (name && folded.trim() === name) problems.push('must not be your name');
  return problems;
}

/**
 * "alice" for "Alice+tollgate@example.com": the +tag is dropped, because the part before it is what
 * identifies the person (and a password containing the whole local part contains that part too).
 */
function emailLocalPart(email: string | undefined): string | undefined {
  if (email === undefined) return undefined;
  const normalized = email.normalize('NFKC').trim().toLowerCase();
  const at = normalized.lastIndexOf('@');
  const local = at === -1 ? normalized : normalized.slice(0, at);
  const plus = local.indexOf('+');
  return plus >= minimumEmailPartLength ? local.slice(0, plus) : local;
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIPv4 } from 'node:net';
import {
  type KeyEvents,
  type KeyLimits,
  type KeyMode,
  type Logger,
  loadKeyForVerification,
  type Queryable,
  recordKeyUse,
  type StoredApiKey,
  TollgateError,
} from '@tollgate/services';

/** The key a request was verified with: what the limiter, the meter and plugins may rely on. */
export interface VerifiedKey {
  readonly keyId: string;
  readonly teamId: string;
  /** null: owned by the team rather than by a member. */
  readonly ownerUserId: string | null;
  readonly mode: KeyMode;
  /** Ids of the APIs the key is limited to; empty: every API. */
  readonly apis: readonly string[];
  /** Upper-case HTTP methods; empty: every method. */
  readonly methods: readonly string[];
  /** CIDR networks; empty: anywhere. */
  readonly allowedCidrs: readonly string[];
  /** Per-key overrides of the plan's rate limits (calls per window). */
  readonly limits: Readonly<KeyLimits>;
  readonly expiresAt: Date | null;
}

export interface KeyCheck {
  /** The matched API's id. */
  apiId: string;
  /** Upper case, as Node gives it. */
  method: string;
  /** The client address (ctx.ip); IPv4-mapped IPv6 (`::ffff:a.b.c.d`) counts as IPv4. */
  clientIp: string;
}

export interface KeyVerifier {
  /**
   * The verified key, or a TollgateError: 401 `unauthorized` (missing, malformed or unknown),
   * `key_revoked` or `key_expired`; 403 `key_api_not_allowed`, `key_method_not_allowed` or
   * `key_address_not_allowed`. Answers without waiting (no promise) when the key is cached.
   */
  verify(presented: string | undefined, check: KeyCheck): VerifiedKey | Promise<VerifiedKey>;
  /** Forgets one key (by the `<id>` of `tg_<mode>_<id>_<secret>`), e.g. on a revocation. */
  invalidate(lookupId: string): void;
  /** Forgets every cached key. */
  clear(): void;
  /** Writes the pending last-use times, stops the timer and the subscription. */
  close(): Promise<void>;
}

export interface KeyVerifierOptions {
  /** Where keys are read (`loadKeyForVerification`) and their last use written. */
  database: Queryable;
  /** Revocations and rotations to drop cached keys on; without it, only the TTL expires them. */
  events?: KeyEvents;
  logger: Logger;
  /** How long a looked-up key (or the absence of one) is trusted without asking again. */
  ttlMs?: number;
  /** Cached keys kept at most; the oldest go first. The same bound again for unknown ids. */
  maxEntries?: number;
  /** `last_used_at` is written at most this often per key. */
  useRecordIntervalMs?: number;
  /** How often the noted uses are written, in one statement. */
  useFlushMs?: number;
}

/** `tg_<mode>_<id>_<secret>`: ids as the control plane makes them (api-keys.ts), 43-character secrets. */
const keyPattern = /^tg_(live|test)_([A-Za-z0-9]{8,32})_([A-Za-z0-9]{43})$/;

/**
 * The key of a request: `x-api-key`, else `Authorization: Bearer <key>`. x-api-key wins so a client
 * can send its own Authorization to the upstream beside it; `inAuthorization` says whether the
 * Authorization header carried the key (and so must not be forwarded).
 */
export function presentedKey(headers: IncomingHttpHeaders): { key: string | undefined; inAuthorization: boolean } {
  const header = headers['x-api-key'];
  // Node joins a repeated x-api-key with ", ", which then reads as malformed.
  if (header !== undefined)
    return { key: (Array.isArray(header) ? header.join(', ') : header).trim(), inAuthorization: false };
  const authorization = headers.authorization;
  if (authorization === undefined) return { key: undefined, inAuthorization: false };
  // RFC 9110 section 11.1: the scheme is case-insensitive.
  const bearer = /^Bearer +(\S+) *$/i.exec(authorization)?.[1];
  return { key: bearer ?? '', inAuthorization: true };
}

interface CachedKey {
  stored: StoredApiKey;
  verified: VerifiedKey;
  apiIds: Set<string> | undefined;
  methods: Set<string> | undefined;
  addresses: BlockList | undefined;
  /** ms since the epoch; Infinity: never. */
  expiresAt: number;
  previousSecretUntil: number;
}

interface Entry {
  key: CachedKey;
  until: number;
}

function prepare(stored: StoredApiKey, logger: Logger): CachedKey {
  let addresses: BlockList | undefined;
  if (stored.allowedCidrs.length > 0) {
    addresses = new BlockList();
    for (const cidr of stored.allowedCidrs) {
      const [address = '', prefix = ''] = cidr.split('/');
      try {
        addresses.addSubnet(address, Number(prefix), isIPv4(address) ? 'ipv4' : 'ipv6');
      } catch (error) {
        // Postgres checked it as cidr; a network Node refuses allows nobody rather than everybody.
        logger.warn({ err: error, keyId: stored.id, cidr }, 'ignored a CIDR Node cannot read');
      }
    }
  }
  const verified: VerifiedKey = Object.freeze({
    keyId: stored.id,
    teamId: stored.teamId,
    ownerUserId: stored.ownerUserId,
    mode: stored.mode,
    apis: Object.freeze([...stored.apiIds]),
    methods: Object.freeze([...stored.methods]),
    allowedCidrs: Object.freeze([...stored.allowedCidrs]),
    limits: Object.freeze({ ...stored.limits }),
    expiresAt: stored.expiresAt,
  });
  return {
    stored,
    verified,
    apiIds: stored.apiIds.length > 0 ? new Set(stored.apiIds) : undefined,
    methods: stored.methods.length > 0 ? new Set(stored.methods) : undefined,
    addresses,
    expiresAt: stored.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY,
    previousSecretUntil: stored.previousSecretExpiresAt?.getTime() ?? 0,
  };
}

function unauthorized(message: string): TollgateError {
  return new TollgateError('unauthorized', message, {
    hint: 'send the key as Authorization: Bearer tg_live_... or x-api-key',
  });
}

const missing = () => unauthorized('this API needs an API key');
const malformed = () => unauthorized('the API key is malformed');
const unknown = () => unauthorized('the API key is not valid');

function addressAllowed(addresses: BlockList, clientIp: string): boolean {
  try {
    if (clientIp.startsWith('::ffff:')) {
      const v4 = clientIp.slice(7);
      if (isIPv4(v4)) return addresses.check(v4, 'ipv4');
    }
    return addresses.check(clientIp, isIPv4(clientIp) ? 'ipv4' : 'ipv6');
  } catch {
    return false;
  }
}

/**
 * Verifies API keys against the control plane's `api_keys`, with an in-process cache: a key (or the
 * absence of one) is trusted for `ttlMs`, one query per lookup id however many requests wait for it,
 * dropped at once when a revocation or rotation is announced on `events`. When the database cannot
 * answer, a key cached before keeps being served (its secret and restrictions as last read).
 */
export function createKeyVerifier(options: KeyVerifierOptions): KeyVerifier {
  const { database, logger } = options;
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const useRecordIntervalMs = options.useRecordIntervalMs ?? 60_000;
  const known = new Map<string, Entry>();
  /** Lookup ids with no key, until when. Apart, so guessed ids cannot push real keys out. */
  const unknownIds = new Map<string, number>();
  const loading = new Map<string, Promise<CachedKey | undefined>>();
  /** Bumped by every invalidation: a load that started before one must not fill the cache. */
  let generation = 0;

  const lastUseNoted = new Map<string, number>();
  let pendingUse = new Set<string>();
  const flushUse = async () => {
    if (pendingUse.size === 0) return;
    const ids = [...pendingUse];
    pendingUse = new Set();
    try {
      await recordKeyUse(database, ids);
    } catch (error) {
      logger.warn({ err: error, keys: ids.length }, 'could not record when API keys were last used');
    }
  };
  const flushTimer = setInterval(() => void flushUse(), options.useFlushMs ?? 5_000);
  flushTimer.unref();

  const noteUse = (keyId: string, now: number) => {
    const last = lastUseNoted.get(keyId);
    if (last !== undefined && now - last < useRecordIntervalMs) return;
    if (lastUseNoted.size >= maxEntries * 2) lastUseNoted.clear();
    lastUseNoted.set(keyId, now);
    pendingUse.add(keyId);
  };

  const remember = <V>(map: Map<string, V>, lookupId: string, value: V) => {
    map.delete(lookupId);
    if (map.size >= maxEntries) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    map.set(lookupId, value);
  };

  const load = (lookupId: string, stale: CachedKey | undefined): Promise<CachedKey | undefined> => {
    let pending = loading.get(lookupId);
    if (pending) return pending;
    const startedAt = generation;
    pending = loadKeyForVerification(database, lookupId)
      .then(
        (stored) => {
          const key = stored ? prepare(stored, logger) : undefined;
          if (startedAt === generation) {
            const until = Date.now() + ttlMs;
            if (key) {
              remember(known, lookupId, { key, until });
              unknownIds.delete(lookupId);
            } else {
              known.delete(lookupId);
              remember(unknownIds, lookupId, until);
            }
          }
          return key;
        },
        (error: unknown) => {
          if (stale && startedAt === generation) {
            // Serve what we had, and give the database a few seconds before asking again.
            logger.warn({ err: error }, 'could not read an API key; serving the cached copy');
            remember(known, lookupId, { key: stale, until: Date.now() + Math.min(ttlMs, 5_000) });
            return stale;
          }
          logger.error({ err: error }, 'could not read an API key');
          throw new TollgateError('database_unreachable', 'API keys cannot be checked right now', { cause: error });
        },
      )
      .finally(() => {
        if (loading.get(lookupId) === pending) loading.delete(lookupId);
      });
    loading.set(lookupId, pending);
    return pending;
  };

  const check = (
    key: CachedKey | undefined,
    mode: string,
    secret: string,
    request: KeyCheck,
    now: number,
  ): VerifiedKey => {
    if (!key || key.stored.mode !== mode) throw unknown();
    // Hashing first makes the comparison independent of the secret's content; both are 32 bytes.
    const hash = createHash('sha256').update(secret).digest();
    if (!timingSafeEqual(hash, key.stored.secretSha256)) {
      const previous = key.stored.previousSecretSha256;
      if (!previous || !timingSafeEqual(hash, previous)) throw unknown();
      if (now >= key.previousSecretUntil) {
        throw new TollgateError('key_expired', 'this secret was replaced by a rotation and its grace period is over', {
          hint: 'use the key that `tollgate keys rotate` printed',
        });
      }
    }
    if (key.stored.revokedAt) throw new TollgateError('key_revoked', 'the API key was revoked');
    if (now >= key.expiresAt) throw new TollgateError('key_expired', 'the API key has expired');
    if (key.apiIds && !key.apiIds.has(request.apiId)) {
      throw new TollgateError('key_api_not_allowed', 'the API key is not allowed to call this API');
    }
    if (key.methods && !key.methods.has(request.method)) {
      throw new TollgateError('key_method_not_allowed', `the API key is not allowed to use ${request.method}`);
    }
    if (key.addresses && !addressAllowed(key.addresses, request.clientIp)) {
      throw new TollgateError('key_address_not_allowed', 'the API key is not allowed from this address');
    }
    noteUse(key.stored.id, now);
    return key.verified;
  };

  const invalidate = (lookupId: string) => {
    generation++;
    known.delete(lookupId);
    unknownIds.delete(lookupId);
    loading.delete(lookupId);
  };
  const clear = () => {
    generation++;
    known.clear();
    unknownIds.clear();
    loading.clear();
  };

  const unsubscribe = options.events?.subscribe((event) => {
    if (event.type === 'invalidate') invalidate(event.lookupId);
    else clear();
  });

  return {
    verify(presented, request) {
      if (presented === undefined) throw missing();
      const parts = keyPattern.exec(presented);
      if (!parts) throw malformed();
      const mode = parts[1] as string;
      const lookupId = parts[2] as string;
      const secret = parts[3] as string;
      const now = Date.now();
      const entry = known.get(lookupId);
      if (entry && entry.until > now) return check(entry.key, mode, secret, request, now);
      const unknownUntil = unknownIds.get(lookupId);
      if (unknownUntil !== undefined && unknownUntil > now) throw unknown();
      return load(lookupId, entry?.key).then((key) => check(key, mode, secret, request, Date.now()));
    },
    invalidate,
    clear,
    async close() {
      clearInterval(flushTimer);
      unsubscribe?.();
      await flushUse();
    },
  };
}

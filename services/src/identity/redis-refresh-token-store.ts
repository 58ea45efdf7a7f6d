import type { Cluster, Redis } from 'ioredis';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';
import { openRedisClient, type RedisConfig } from '../storage/open-redis-client.js';
import { withTimeout } from '../timing/with-timeout.js';
import type { RefreshTokenStore, RotationVerdict } from './refresh-token-store.js';

/*
 * Layout (docs/auth.md#where-refresh-tokens-live). `{<session id>}` is a hash tag: every key of a
 * session lands in one Redis Cluster slot, so one script can touch them all.
 *
 *   refresh:{<session id>}                a set: the hex SHA-256 of every token of the session
 *   refresh:{<session id>}:<hex sha-256>  a hash: `session` (the id), `issued_at` and, once
 *                                         exchanged, `rotated_at` (Unix ms)
 *
 * Both expire when the session does (PEXPIREAT). A token's key is its family's key plus `:<hash>`,
 * so the scripts derive it from KEYS[1], which already carries the client's key prefix.
 */
const familyKey = (sessionId: string) => `refresh:{${sessionId}}`;
const tokenKey = (sessionId: string, sha256: Buffer) => `${familyKey(sessionId)}:${sha256.toString('hex')}`;

/** KEYS: family, token. ARGV: token hash (hex), session id, now (ms), session end (ms). */
const issueScript = `
redis.call('HSET', KEYS[2], 'session', ARGV[2], 'issued_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1`;

/**
 * KEYS: family, presented token, next token. ARGV: next hash (hex), session id, now (ms), session
 * end (ms). Redis runs a script alone, so of two rotations of one token the second sees
 * `rotated_at` set by the first: exactly one `rotated`, the other `reused`.
 */
const rotateScript = `
if redis.call('HGET', KEYS[2], 'session') ~= ARGV[2] then return 'unknown' end
if redis.call('HEXISTS', KEYS[2], 'rotated_at') == 1 then return 'reused' end
redis.call('HSET', KEYS[2], 'rotated_at', ARGV[3])
redis.call('HSET', KEYS[3], 'session', ARGV[2], 'issued_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 'rotated'`;

/**
 * KEYS: family. Deletes every token key named in the family, then the family. The token keys are
 * built here rather than passed in, so a rotation cannot slip a new token in between reading the
 * set and deleting; they share the family's hash tag, hence its Cluster slot.
 */
const forgetScript = `
local hashes = redis.call('SMEMBERS', KEYS[1])
for _, hash in ipairs(hashes) do
  redis.call('DEL', KEYS[1] .. ':' .. hash)
end
redis.call('DEL', KEYS[1])
return #hashes`;

type RefreshTokenClient = (Redis | Cluster) & {
  tollgateRefreshIssue(family: string, token: string, ...args: string[]): Promise<number>;
  tollgateRefreshRotate(family: string, presented: string, next: string, ...args: string[]): Promise<string>;
  tollgateRefreshForget(family: string): Promise<number>;
};

export interface RedisRefreshTokenStoreOptions {
  logger: Logger;
  /** Put before every key, so several installations (or test runs) can share one Redis. */
  keyPrefix?: string;
  /** How long start-up waits for the first connection before going on without it. */
  connectWaitMs?: number;
  /** How long a refresh waits for Redis before answering 503 `session_store_unavailable`. */
  commandTimeoutMs?: number;
}

function unavailable(cause: unknown): TollgateError {
  return new TollgateError('session_store_unavailable', 'the session store cannot be reached; try again shortly', {
    cause,
  });
}

/**
 * Refresh tokens in Redis or Redis Cluster. The scripts are sent once and then run by their SHA-1
 * (ioredis' defineCommand: EVALSHA, and EVAL when Redis answers NOSCRIPT, e.g. after a restart).
 */
export async function openRedisRefreshTokenStore(
  config: RedisConfig,
  options: RedisRefreshTokenStoreOptions,
): Promise<RefreshTokenStore> {
  const { client, location, close } = await openRedisClient(config, {
    logger: options.logger,
    purpose: 'refresh tokens',
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.connectWaitMs === undefined ? {} : { connectWaitMs: options.connectWaitMs }),
  });
  client.defineCommand('tollgateRefreshIssue', { numberOfKeys: 2, lua: issueScript });
  client.defineCommand('tollgateRefreshRotate', { numberOfKeys: 3, lua: rotateScript });
  client.defineCommand('tollgateRefreshForget', { numberOfKeys: 1, lua: forgetScript });
  const redis = client as RefreshTokenClient;
  const timeoutMs = options.commandTimeoutMs ?? 2_000;

  async function run<T>(what: string, command: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(command(), timeoutMs, `Redis ${what}`);
    } catch (error) {
      throw unavailable(error);
    }
  }

  return {
    driver: config.driver,
    async issue(_tx, token) {
      await run('refresh-token issue', () =>
        redis.tollgateRefreshIssue(
          familyKey(token.sessionId),
          tokenKey(token.sessionId, token.tokenSha256),
          token.tokenSha256.toString('hex'),
          token.sessionId,
          String(token.now.getTime()),
          String(token.expiresAt.getTime()),
        ),
      );
    },
    async rotate(rotation) {
      const verdict = await run('refresh-token rotation', () =>
        redis.tollgateRefreshRotate(
          familyKey(rotation.sessionId),
          tokenKey(rotation.sessionId, rotation.presentedSha256),
          tokenKey(rotation.sessionId, rotation.nextSha256),
          rotation.nextSha256.toString('hex'),
          rotation.sessionId,
          String(rotation.now.getTime()),
          String(rotation.expiresAt.getTime()),
        ),
      );
      if (verdict !== 'rotated' && verdict !== 'reused' && verdict !== 'unknown') {
        throw new Error(`unexpected answer from the refresh-token script: ${String(verdict)}`);
      }
      return verdict satisfies RotationVerdict;
    },
    async forget(_tx, sessionIds) {
      const failed = await Promise.allSettled(
        sessionIds.map((sessionId) =>
          run('refresh-token removal', () => redis.tollgateRefreshForget(familyKey(sessionId))),
        ),
      );
      const errors = failed.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
      if (errors.length > 0) {
        options.logger.warn(
          { err: (errors[0] as TollgateError).cause, sessions: errors.length, location },
          'could not delete the refresh tokens of revoked sessions from Redis; they expire with their sessions',
        );
      }
    },
    close,
  };
}

import { createHash, randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterStore } from '../src/counters/counter-store.js';
import { openCounterStore } from '../src/counters/open-counter-store.js';
import { openRefreshTokenStore } from '../src/identity/open-refresh-token-store.js';
import type { RefreshTokenStore } from '../src/identity/refresh-token-store.js';
import { createSession, refreshSession, revokeSession } from '../src/identity/sessions.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { type Disposable, openTestDatabase, silentLogger, testRedisUrl, uniqueKey } from './support/backends.js';
import { startRedisCluster, type TestRedisCluster } from './support/redis-cluster.js';

// A real three-node Redis Cluster made of local redis-server processes. It runs where the Redis
// server binaries are (the TEST_REDIS_URL run in CI installs them); the run's banner lists it as
// skipped otherwise.
describe.skipIf(!testRedisUrl)('counter store on Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  let redisCluster: TestRedisCluster;
  let counters: CounterStore;
  let database: Disposable<Database>;
  let refreshTokens: RefreshTokenStore;

  beforeAll(async () => {
    redisCluster = await startRedisCluster();
    counters = await openCounterStore(
      { driver: 'redis-cluster', nodes: redisCluster.nodes },
      { logger: silentLogger() },
    );
    database = await openTestDatabase();
    await runMigrations(database.value);
    refreshTokens = await openRefreshTokenStore(
      { driver: 'redis-cluster', nodes: redisCluster.nodes },
      { database: database.value, logger: silentLogger() },
    );
  }, 60_000);

  afterAll(async () => {
    await counters?.close();
    await refreshTokens?.close();
    await database?.dispose();
    await redisCluster?.stop();
  });

  it('answers a health check and counts across the cluster’s slots', async () => {
    expect(counters.driver).toBe('redis-cluster');
    await counters.ping();
    // Enough distinct keys to land on every node's slots.
    const keys = Array.from({ length: 30 }, (_, index) => uniqueKey(`cluster-${index}`));
    await Promise.all(keys.map((key, index) => counters.increment(key, index + 1, 60_000)));
    await Promise.all(keys.map((key) => counters.increment(key, 1, 60_000)));
    expect(await Promise.all(keys.map((key) => counters.get(key)))).toEqual(keys.map((_, index) => index + 2));
  });

  it('rotates refresh tokens, detects reuse and forgets a family, each session on its own slot', async () => {
    expect(refreshTokens.driver).toBe('redis-cluster');
    const db = database.value;
    const signingKey = randomBytes(32);
    const user = await db.query<{ id: string }>('INSERT INTO users (email) VALUES ($1) RETURNING id', [
      `${uniqueKey('cluster')}@example.com`,
    ]);
    const userId = user.rows[0]?.id ?? '';
    const refresh = (refreshToken: string) => refreshSession(db, { refreshToken, signingKey, refreshTokens });
    const cluster = new Cluster(redisCluster.nodes);
    try {
      // Enough sessions for their hash tags to land on every node.
      const sessions = await Promise.all(
        Array.from({ length: 12 }, () =>
          db.transaction((tx) => createSession(tx, { userId, client: {}, signingKey, refreshTokens })),
        ),
      );
      for (const [index, session] of sessions.entries()) {
        const next = await refresh(session.refreshToken);
        if (!next.ok) throw new Error(`refresh ${index} failed: ${next.reason}`);
        const family = `refresh:{${session.sessionId}}`;
        expect(await cluster.scard(family)).toBe(2);
        if (index % 2 === 0) {
          expect(await refresh(session.refreshToken)).toMatchObject({ ok: false, reason: 'reused' });
        } else {
          expect(
            await revokeSession(db, { userId, sessionId: session.sessionId, reason: 'logout', refreshTokens }),
          ).toBe(true);
        }
        expect(await refresh(next.tokens.refreshToken)).toMatchObject({ ok: false, reason: 'revoked' });
        const hash = createHash('sha256').update(next.tokens.refreshToken).digest('hex');
        expect(await cluster.exists(family)).toBe(0);
        expect(await cluster.exists(`${family}:${hash}`)).toBe(0);
      }
    } finally {
      cluster.disconnect();
    }
  });

  it('fails its health check quickly once the cluster is gone', async () => {
    redisCluster.kill();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    await expect(counters.ping()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(3_000);
  });
});

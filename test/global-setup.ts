import { Redis } from 'ioredis';
import pg from 'pg';

function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
}

/**
 * Prints which backends this run uses (one line, so a CI log shows it at a glance) and fails the
 * whole run at once when a configured server does not answer, rather than test by test.
 */
export default async function setup(): Promise<void> {
  const databaseUrl = process.env.TEST_DATABASE_URL || undefined;
  const redisUrl = process.env.TEST_REDIS_URL || undefined;
  if (databaseUrl) {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
    await client.connect().catch((error: Error) => {
      throw new Error(`TEST_DATABASE_URL (${describeUrl(databaseUrl)}) does not answer: ${error.message}`);
    });
    await client.end();
  }
  if (redisUrl) {
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await redis.connect().catch((error: Error) => {
      throw new Error(`TEST_REDIS_URL (${describeUrl(redisUrl)}) does not answer: ${error.message}`);
    });
    redis.disconnect();
  }
  const database = databaseUrl
    ? `postgres (${describeUrl(databaseUrl)})`
    : 'pglite (embedded; set TEST_DATABASE_URL for PostgreSQL)';
  const counters = redisUrl ? `redis (${describeUrl(redisUrl)})` : 'memory (embedded; set TEST_REDIS_URL for Redis)';
  const skipped = [
    ...(databaseUrl ? [] : ['two processes migrating one PostgreSQL server', 'a missing PostgreSQL database']),
    ...(redisUrl ? [] : ['Redis outage and recovery', 'Redis Cluster']),
  ];
  process.stdout.write(`Test backends: database=${database}, counters=${counters}\n`);
  if (skipped.length > 0) {
    process.stdout.write(`Skipped on these backends, as they need the servers: ${skipped.join('; ')}\n`);
  }
}

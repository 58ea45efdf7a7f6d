import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  consumeCredits,
  creditBalance,
  expireCredits,
  grantCredits,
  listCreditEntries,
  pendingLowBalanceAlerts,
  setLowBalanceThreshold,
} from '../src/credits/credit-ledger.js';
import { createCreditPack, fulfilPackPurchase, reversePackPurchase } from '../src/credits/credit-packs.js';
import type { CreditPool } from '../src/credits/credit-pool.js';
import { createUserWithPassword } from '../src/identity/users.js';
import type { Database, Queryable } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { openDatabase } from '../src/storage/open-database.js';
import { openPostgresDatabase } from '../src/storage/postgres-database.js';
import { createTeam } from '../src/teams/teams.js';
import { createTestDatabaseConfig, expectedDatabaseDriver, silentLogger } from './support/backends.js';

let database: Database;
let disposeConfig: () => Promise<void>;
let ownerId: string;

beforeAll(async () => {
  const config = await createTestDatabaseConfig();
  disposeConfig = config.dispose;
  // On PostgreSQL a pool as wide as the concurrency test, so its 50 transactions really run at once.
  database =
    config.value.driver === 'postgres'
      ? await openPostgresDatabase({ url: config.value.url, logger: silentLogger(), maxConnections: 55 })
      : await openDatabase(config.value, { logger: silentLogger() });
  await runMigrations(database);
  const owner = await database.transaction((tx) =>
    createUserWithPassword(tx, {
      email: `credits.${randomBytes(4).toString('hex')}@example.com`,
      password: 'credit ledger passphrase 1',
      installationRole: 'member',
    }),
  );
  ownerId = owner.id;
});
afterAll(async () => {
  await database.close();
  await disposeConfig();
});

async function newTeam(): Promise<string> {
  const team = await database.transaction((tx) =>
    createTeam(tx, { name: `Credits ${randomBytes(3).toString('hex')}`, creatorUserId: ownerId }),
  );
  return team.id;
}

const usd: CreditPool = { currency: 'USD' };
const calls: CreditPool = { metric: 'calls' };

async function balanceOf(teamId: string, pool: CreditPool, now?: Date): Promise<bigint> {
  const balances = await creditBalance(database, teamId, now);
  const key = 'currency' in pool ? pool.currency : pool.metric;
  return balances.find((b) => ('currency' in b.pool ? b.pool.currency : b.pool.metric) === key)?.balance ?? 0n;
}

/** The ledger replays to the stored balance, and the stored balance is never below zero. */
async function expectLedgerConsistent(teamId: string): Promise<void> {
  const result = await database.query<{ pool: string; balance: string; sum: string; remaining: string }>(
    `SELECT b.pool, b.balance::text,
       (SELECT coalesce(sum(delta), 0)::text FROM credit_entries e WHERE e.team_id = b.team_id AND e.pool = b.pool) AS sum,
       (SELECT coalesce(sum(remaining), 0)::text FROM credit_grant_remainders r WHERE r.team_id = b.team_id AND r.pool = b.pool) AS remaining
     FROM credit_balances b WHERE b.team_id = $1`,
    [teamId],
  );
  for (const row of result.rows) {
    expect(row.sum, `entries of ${row.pool}`).toBe(row.balance);
    expect(row.remaining, `grant remainders of ${row.pool}`).toBe(row.balance);
    expect(BigInt(row.balance) >= 0n).toBe(true);
  }
}

describe(`the credit ledger (${expectedDatabaseDriver})`, () => {
  it('buys a pack and pays overage with it, with the exact balance at every step', async () => {
    const teamId = await newTeam();
    const slug = `usd50-${randomBytes(3).toString('hex')}`;
    await database.transaction((tx) =>
      createCreditPack(tx, {
        slug,
        name: '$50 of credit',
        prices: [{ currency: 'USD', amount: '45.00' }],
        grant: { currency: 'USD', amount: '50.00' },
        validity_days: 365,
      }),
    );
    const bought = await database.transaction((tx) =>
      fulfilPackPurchase(tx, { teamId, packSlug: slug, paymentReference: 'pi_test_1' }),
    );
    expect(bought.entry).toMatchObject({ kind: 'grant', delta: 5000n, balanceAfter: 5000n, source: 'pack' });
    expect(bought.entry.packSlug).toBe(slug);
    expect(bought.entry.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 364 * 86_400_000);
    expect(await balanceOf(teamId, usd)).toBe(5000n);

    // The same payment reported again (a duplicated webhook): nothing more.
    const again = await database.transaction((tx) =>
      fulfilPackPurchase(tx, { teamId, packSlug: slug, paymentReference: 'pi_test_1' }),
    );
    expect(again.replayed).toBe(true);
    expect(again.entry.id).toBe(bought.entry.id);
    expect(await balanceOf(teamId, usd)).toBe(5000n);

    // Overage of 50,000 calls at $0.0005: $25.00, paid by credits.
    const first = await database.transaction((tx) =>
      consumeCredits(tx, { teamId, pool: usd, wanted: 2500n, reference: 'inv_1:calls', idempotencyKey: 'inv_1:calls' }),
    );
    expect(first).toMatchObject({ taken: 2500n, wanted: 2500n, balance: 2500n, replayed: false });
    expect(await balanceOf(teamId, usd)).toBe(2500n);
    // $30.01 more: only $25.00 is left, so $25.00 is taken and $5.01 is the caller's to invoice.
    const second = await database.transaction((tx) =>
      consumeCredits(tx, { teamId, pool: usd, wanted: 3001n, idempotencyKey: 'inv_2:calls' }),
    );
    expect(second).toMatchObject({ taken: 2500n, wanted: 3001n, balance: 0n });
    const third = await database.transaction((tx) =>
      consumeCredits(tx, { teamId, pool: usd, wanted: 1n, idempotencyKey: 'inv_3:calls' }),
    );
    expect(third).toMatchObject({ taken: 0n, balance: 0n });
    expect(await balanceOf(teamId, usd)).toBe(0n);

    const { entries } = await listCreditEntries(database, teamId, { limit: 10 });
    expect(entries.map((e) => [e.kind, e.delta, e.balanceAfter])).toEqual([
      ['consumption', 0n, 0n],
      ['consumption', -2500n, 0n],
      ['consumption', -2500n, 2500n],
      ['grant', 5000n, 5000n],
    ]);
    await expectLedgerConsistent(teamId);
  });

  it('never drives the balance below zero with 50 concurrent consumers; what they take adds up to the balance', async () => {
    const teamId = await newTeam();
    await database.transaction((tx) =>
      grantCredits(tx, { teamId, pool: usd, amount: 1000n, source: 'operator', idempotencyKey: 'start' }),
    );
    await database.transaction((tx) =>
      grantCredits(tx, {
        teamId,
        pool: usd,
        amount: 234n,
        source: 'operator',
        idempotencyKey: 'start-2',
        expiresAt: new Date(Date.now() + 86_400_000),
      }),
    );
    // 50 consumers each want 37 cents: 1,850 cents asked of 1,234.
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        database.transaction((tx) =>
          consumeCredits(tx, { teamId, pool: usd, wanted: 37n, idempotencyKey: `concurrent-${index}` }),
        ),
      ),
    );
    const taken = results.reduce((sum, result) => sum + result.taken, 0n);
    expect(taken).toBe(1234n);
    expect(results.every((result) => result.taken >= 0n && result.taken <= 37n)).toBe(true);
    // Exactly one consumer got the odd remainder: 1234 = 33 x 37 + 13.
    expect(results.filter((result) => result.taken === 37n)).toHaveLength(33);
    expect(results.filter((result) => result.taken === 13n)).toHaveLength(1);
    expect(await balanceOf(teamId, usd)).toBe(0n);
    // Each consumer that took something left a distinct balance: they took turns.
    expect(new Set(results.map((result) => result.balance)).size).toBe(
      results.filter((result) => result.taken > 0n).length,
    );
    await expectLedgerConsistent(teamId);
  });

  it('takes units of a metric from the grant that expires first, never-expiring ones last', async () => {
    const teamId = await newTeam();
    const now = new Date();
    const grant = (key: string, amount: bigint, days: number | null) =>
      database.transaction((tx) =>
        grantCredits(tx, {
          teamId,
          pool: calls,
          amount,
          source: 'operator',
          idempotencyKey: key,
          expiresAt: days === null ? null : new Date(now.getTime() + days * 86_400_000),
        }),
      );
    const forever = await grant('forever', 1_000_000n, null);
    const late = await grant('late', 500n, 30);
    const soon = await grant('soon', 300n, 5);
    const consumed = await database.transaction((tx) =>
      consumeCredits(tx, { teamId, pool: calls, wanted: 1000n, idempotencyKey: 'overage-1' }),
    );
    expect(consumed.entry.allocations).toEqual([
      { grantEntryId: soon.entry.id, amount: 300n },
      { grantEntryId: late.entry.id, amount: 500n },
      { grantEntryId: forever.entry.id, amount: 200n },
    ]);
    expect(consumed.balance).toBe(999_800n);
    await expectLedgerConsistent(teamId);
  });

  it('treats repeated idempotency keys as the first call, and refuses a key reused for something else', async () => {
    const teamId = await newTeam();
    const grant = () =>
      database.transaction((tx) =>
        grantCredits(tx, { teamId, pool: usd, amount: 700n, source: 'operator', idempotencyKey: 'grant-1' }),
      );
    const [a, b] = [await grant(), await grant()];
    expect(b).toMatchObject({ replayed: true, entry: { id: a.entry.id } });
    const consume = () =>
      database.transaction((tx) => consumeCredits(tx, { teamId, pool: usd, wanted: 500n, idempotencyKey: 'use-1' }));
    const first = await consume();
    const retried = await consume();
    expect(retried).toMatchObject({ replayed: true, taken: 500n, balance: 200n, entry: { id: first.entry.id } });
    expect(await balanceOf(teamId, usd)).toBe(200n);
    await expect(
      database.transaction((tx) =>
        grantCredits(tx, { teamId, pool: usd, amount: 701n, source: 'operator', idempotencyKey: 'grant-1' }),
      ),
    ).rejects.toMatchObject({ code: 'idempotency_conflict' });
    await expect(
      database.transaction((tx) => consumeCredits(tx, { teamId, pool: usd, wanted: 5n, idempotencyKey: 'grant-1' })),
    ).rejects.toMatchObject({ code: 'idempotency_conflict' });
    // Concurrent retries of one grant: one entry.
    await Promise.all(
      Array.from({ length: 5 }, () =>
        database.transaction((tx) =>
          grantCredits(tx, { teamId, pool: usd, amount: 100n, source: 'operator', idempotencyKey: 'grant-2' }),
        ),
      ),
    );
    expect(await balanceOf(teamId, usd)).toBe(300n);
    await expectLedgerConsistent(teamId);
  });

  it('expires remainders with an expiry entry; expired credit is never consumed, even before the job runs', async () => {
    const teamId = await newTeam();
    const t0 = new Date('2030-01-01T00:00:00Z');
    const day = 86_400_000;
    await database.transaction((tx) =>
      grantCredits(tx, {
        teamId,
        pool: usd,
        amount: 1000n,
        source: 'operator',
        idempotencyKey: 'expiring',
        expiresAt: new Date(t0.getTime() + 10 * day),
        now: t0,
      }),
    );
    await database.transaction((tx) =>
      grantCredits(tx, { teamId, pool: usd, amount: 50n, source: 'operator', idempotencyKey: 'kept', now: t0 }),
    );
    await database.transaction((tx) =>
      consumeCredits(tx, {
        teamId,
        pool: usd,
        wanted: 400n,
        idempotencyKey: 'day-1',
        now: new Date(t0.getTime() + day),
      }),
    );
    const later = new Date(t0.getTime() + 11 * day);
    expect(await balanceOf(teamId, usd, later)).toBe(50n);
    // A consumer after the expiry writes it off first, then takes from what is left.
    const after = await database.transaction((tx) =>
      consumeCredits(tx, { teamId, pool: usd, wanted: 100n, idempotencyKey: 'day-11', now: later }),
    );
    expect(after).toMatchObject({ taken: 50n, balance: 0n });
    const { entries } = await listCreditEntries(database, teamId, { limit: 10 });
    expect(entries.map((e) => [e.kind, e.delta, e.balanceAfter])).toEqual([
      ['consumption', -50n, 0n],
      ['expiry', -600n, 50n],
      ['consumption', -400n, 650n],
      ['grant', 50n, 1050n],
      ['grant', 1000n, 1000n],
    ]);
    // The job finds nothing left to do for this team.
    expect((await expireCredits(database, later)).pools.filter((p) => p.teamId === teamId)).toEqual([]);
    await expectLedgerConsistent(teamId);
  });

  it('the expiry job writes off expired remainders once, however often it runs', async () => {
    const teamId = await newTeam();
    const t0 = new Date('2031-01-01T00:00:00Z');
    await database.transaction((tx) =>
      grantCredits(tx, {
        teamId,
        pool: calls,
        amount: 10_000n,
        source: 'operator',
        idempotencyKey: 'g',
        expiresAt: new Date(t0.getTime() + 1000),
        now: t0,
      }),
    );
    expect((await expireCredits(database, t0)).pools.filter((p) => p.teamId === teamId)).toEqual([]);
    const later = new Date(t0.getTime() + 2000);
    const run = await expireCredits(database, later);
    expect(run.pools.filter((p) => p.teamId === teamId)).toEqual([{ teamId, pool: calls, expired: 10_000n }]);
    expect((await expireCredits(database, later)).pools.filter((p) => p.teamId === teamId)).toEqual([]);
    expect(await balanceOf(teamId, calls, later)).toBe(0n);
    await expectLedgerConsistent(teamId);
  });

  it('reports a low-balance crossing once per crossing, and again after a top-up', async () => {
    const teamId = await newTeam();
    await database.transaction((tx) =>
      grantCredits(tx, { teamId, pool: usd, amount: 5000n, source: 'operator', idempotencyKey: 'g1' }),
    );
    await database.transaction((tx) => setLowBalanceThreshold(tx, { teamId, pool: usd, threshold: 1000n }));
    const use = (key: string, wanted: bigint) =>
      database.transaction((tx) => consumeCredits(tx, { teamId, pool: usd, wanted, idempotencyKey: key }));
    expect((await use('c1', 3500n)).lowBalanceCrossed).toBe(false); // 1500 left
    expect((await use('c2', 600n)).lowBalanceCrossed).toBe(true); // 900 left: crossed
    expect((await use('c2', 600n)).lowBalanceCrossed).toBe(true); // the same consumption, replayed
    expect((await use('c3', 100n)).lowBalanceCrossed).toBe(false); // still below: no second alert
    await database.transaction((tx) =>
      grantCredits(tx, { teamId, pool: usd, amount: 2000n, source: 'operator', idempotencyKey: 'g2' }),
    ); // 2800: back above
    expect((await use('c4', 1900n)).lowBalanceCrossed).toBe(true); // 900: crossed again
    const alerts = (await pendingLowBalanceAlerts(database)).filter((alert) => alert.teamId === teamId);
    expect(alerts.map((alert) => [alert.threshold, alert.balance])).toEqual([
      [1000n, 900n],
      [1000n, 900n],
    ]);
  });

  it('reverses what is left of a refunded pack purchase, once', async () => {
    const teamId = await newTeam();
    const slug = `calls-${randomBytes(3).toString('hex')}`;
    await database.transaction((tx) =>
      createCreditPack(tx, {
        slug,
        name: 'A million calls',
        prices: [{ currency: 'USD', amount: '49' }],
        grant: { metric: 'calls', units: 1_000_000 },
      }),
    );
    await database.transaction((tx) => fulfilPackPurchase(tx, { teamId, packSlug: slug, paymentReference: 'pi_r' }));
    await database.transaction((tx) =>
      consumeCredits(tx, { teamId, pool: calls, wanted: 250_000n, idempotencyKey: 'use' }),
    );
    const refund = () => database.transaction((tx) => reversePackPurchase(tx, { teamId, paymentReference: 'pi_r' }));
    expect(await refund()).toEqual({ reversed: 750_000n, replayed: false });
    expect(await refund()).toEqual({ reversed: 750_000n, replayed: true });
    expect(await balanceOf(teamId, calls)).toBe(0n);
    await expectLedgerConsistent(teamId);
  });

  it('refuses bad input and writes nothing', async () => {
    const teamId = await newTeam();
    const entriesBefore = (await database.query('SELECT count(*)::int AS n FROM credit_entries')).rows[0];
    const refused = [
      (tx: Queryable) => grantCredits(tx, { teamId, pool: usd, amount: -5n, source: 'operator', idempotencyKey: 'x' }),
      (tx: Queryable) => grantCredits(tx, { teamId, pool: usd, amount: 0n, source: 'operator', idempotencyKey: 'x' }),
      (tx: Queryable) =>
        grantCredits(tx, {
          teamId,
          pool: { currency: 'JPY' } as unknown as CreditPool,
          amount: 5n,
          source: 'operator',
          idempotencyKey: 'x',
        }),
      (tx: Queryable) => consumeCredits(tx, { teamId, pool: usd, wanted: -1n, idempotencyKey: 'x' }),
      (tx: Queryable) =>
        consumeCredits(tx, { teamId, pool: { metric: 'Bad Metric' }, wanted: 1n, idempotencyKey: 'x' }),
      (tx: Queryable) => fulfilPackPurchase(tx, { teamId, packSlug: 'no-such-pack', paymentReference: 'pi_x' }),
      (tx: Queryable) =>
        grantCredits(tx, {
          teamId: '00000000-0000-4000-8000-000000000000',
          pool: usd,
          amount: 5n,
          source: 'operator',
          idempotencyKey: 'x',
        }),
    ];
    for (const attempt of refused) {
      await expect(database.transaction((tx) => attempt(tx))).rejects.toMatchObject({
        code: expect.stringMatching(/^(validation_failed|not_found)$/),
      });
    }
    expect((await database.query('SELECT count(*)::int AS n FROM credit_entries')).rows[0]).toEqual(entriesBefore);
  });
});

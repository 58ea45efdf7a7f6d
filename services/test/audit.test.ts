import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuditEntryInput,
  appendAuditEntry,
  canonicalJson,
  genesisHash,
  listAuditEntries,
  recordAudit,
  verifyAuditChain,
} from '../src/audit/index.js';
import { TollgateError } from '../src/errors/tollgate-error.js';
import type { Database, Queryable } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { expectedDatabaseDriver, openTestDatabase } from './support/backends.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function migratedDatabase(): Promise<Database> {
  const opened = await openTestDatabase();
  cleanups.push(opened.dispose);
  await runMigrations(opened.value);
  return opened.value;
}

const alice = '3f2a1c9e-8d7b-4e6f-a5b4-c3d2e1f0a9b8';
const bob = '7c6b5a49-3827-4165-9f8e-7d6c5b4a3928';
const teamA = 'a1b2c3d4-e5f6-4789-8abc-def012345678';

function entry(action: string, overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return { actorUserId: alice, actorLabel: 'alice@example.com', action, outcome: 'success', ...overrides };
}

async function appendMany(database: Database, count: number): Promise<void> {
  for (let index = 1; index <= count; index++) await recordAudit(database, entry(`test.step_${index}`));
}

/** Tampering as a superuser would: with the append-only triggers switched off for one transaction. */
async function tamper(database: Database, sql: string, params: unknown[] = []): Promise<void> {
  await database.transaction(async (tx) => {
    await tx.exec('ALTER TABLE audit_log DISABLE TRIGGER USER');
    await tx.query(sql, params);
    await tx.exec('ALTER TABLE audit_log ENABLE TRIGGER USER');
  });
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (outcome instanceof Error) return outcome;
  throw new Error('expected the statement to be refused');
}

async function chainHead(db: Queryable): Promise<{ last_seq: string; last_hash: string } | undefined> {
  return (await db.query<{ last_seq: string; last_hash: string }>('SELECT last_seq, last_hash FROM audit_chain_head'))
    .rows[0];
}

async function entryCount(db: Queryable): Promise<number> {
  return Number((await db.query<{ count: string }>('SELECT count(*) AS count FROM audit_log')).rows[0]?.count);
}

describe(`audit log (${expectedDatabaseDriver})`, () => {
  it('appends hash-chained entries that verify, with every field stored', async () => {
    const database = await migratedDatabase();
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 0 });

    const first = await recordAudit(database, {
      actorUserId: alice.toUpperCase(),
      actorLabel: 'alice@example.com',
      action: 'team.member_invited',
      outcome: 'success',
      targetType: 'user',
      targetId: bob,
      teamId: teamA,
      ip: '2001:DB8:0:0::1',
      userAgent: 'tollgate-cli/0.1.0',
      requestId: 'req_abc',
      details: { role: 'developer' },
    });
    const second = await recordAudit(database, {
      actorLabel: 'anonymous',
      action: 'auth.login_failed',
      outcome: 'failure',
      ip: '203.0.113.7',
      details: { email: 'bob@example.com' },
    });

    expect(first).toMatchObject({
      seq: 1,
      actorUserId: alice,
      actorLabel: 'alice@example.com',
      action: 'team.member_invited',
      outcome: 'success',
      targetType: 'user',
      targetId: bob,
      teamId: teamA,
      ip: '2001:db8::1',
      userAgent: 'tollgate-cli/0.1.0',
      requestId: 'req_abc',
      details: { role: 'developer' },
      prevHash: genesisHash,
    });
    expect(first.occurredAt).toBeInstanceOf(Date);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(second).toMatchObject({
      seq: 2,
      actorUserId: null,
      targetType: null,
      teamId: null,
      ip: '203.0.113.7',
      userAgent: null,
      prevHash: first.hash,
    });
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 2 });
    expect(await chainHead(database)).toEqual({ last_seq: '2', last_hash: second.hash });
  });

  it('hashes the previous hash and the canonical JSON of the stored fields, so anyone can recompute it', async () => {
    const database = await migratedDatabase();
    const stored = await recordAudit(database, entry('key.created', { teamId: teamA, details: { b: 1, a: [2] } }));
    const fields = {
      seq: '1',
      id: stored.id,
      occurred_at: stored.occurredAt.toISOString(),
      actor_user_id: alice,
      actor_label: 'alice@example.com',
      action: 'key.created',
      outcome: 'success',
      target_type: null,
      target_id: null,
      team_id: teamA,
      ip: null,
      user_agent: null,
      request_id: null,
      details: { a: [2], b: 1 },
      prev_hash: genesisHash,
    };
    expect(canonicalJson(fields)).toContain('"details":{"a":[2],"b":1}');
    const expected = createHash('sha256')
      .update(`${genesisHash}\n${canonicalJson(fields)}`)
      .digest('hex');
    expect(stored.hash).toBe(expected);
  });

  it('gives 50 concurrent appends the seqs 1..50 in one valid chain', async () => {
    const database = await migratedDatabase();
    const appended = await Promise.all(
      Array.from({ length: 50 }, (_, index) => recordAudit(database, entry('test.parallel', { details: { index } }))),
    );
    expect(appended.map((item) => item.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 50 });
    expect((await chainHead(database))?.last_seq).toBe('50');
  });

  it('refuses UPDATE, DELETE and TRUNCATE of entries, and moving the chain head back', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 3);
    for (const sql of [
      `UPDATE audit_log SET action = 'test.rewritten' WHERE seq = 2`,
      'DELETE FROM audit_log WHERE seq = 3',
      'TRUNCATE audit_log',
      'UPDATE audit_chain_head SET last_seq = 2',
      'DELETE FROM audit_chain_head',
    ]) {
      const error = await refusal(database.query(sql));
      expect(error.message, sql).toMatch(/append-only|only moves forward/);
    }
    expect(await entryCount(database)).toBe(3);
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 3 });
  });

  it('finds an entry changed with the triggers disabled, naming exactly its seq', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 5);
    await tamper(database, `UPDATE audit_log SET action = 'test.harmless' WHERE seq = 3`);
    expect(await verifyAuditChain(database)).toEqual({
      ok: false,
      entries: 2,
      brokenAt: 3,
      reason: 'hash mismatch (the entry was changed)',
    });
  });

  it('finds a changed entry whose own hash was recomputed, at the next entry', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 4);
    const [original] = await listAuditEntries(database, { beforeSeq: 3, limit: 1 });
    if (!original) throw new Error('entry 2 is missing');
    const forged = {
      seq: '2',
      id: original.id,
      occurred_at: original.occurredAt.toISOString(),
      actor_user_id: original.actorUserId,
      actor_label: 'mallory@example.com',
      action: original.action,
      outcome: original.outcome,
      target_type: null,
      target_id: null,
      team_id: null,
      ip: null,
      user_agent: null,
      request_id: null,
      details: {},
      prev_hash: original.prevHash,
    };
    const forgedHash = createHash('sha256')
      .update(`${original.prevHash}\n${canonicalJson(forged)}`)
      .digest('hex');
    await tamper(database, `UPDATE audit_log SET actor_label = 'mallory@example.com', hash = $1 WHERE seq = 2`, [
      forgedHash,
    ]);
    expect(await verifyAuditChain(database)).toEqual({
      ok: false,
      entries: 2,
      brokenAt: 3,
      reason: 'prev_hash does not match the previous entry',
    });
  });

  it('finds a deleted middle entry at the seq after the gap', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 5);
    await tamper(database, 'DELETE FROM audit_log WHERE seq = 3');
    expect(await verifyAuditChain(database)).toEqual({
      ok: false,
      entries: 2,
      brokenAt: 4,
      reason: 'gap before this entry (entries were deleted)',
    });
  });

  it('finds a deleted first entry', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 2);
    await tamper(database, 'DELETE FROM audit_log WHERE seq = 1');
    expect(await verifyAuditChain(database)).toMatchObject({ ok: false, entries: 0, brokenAt: 2 });
  });

  it('finds the newest entries deleted, from the chain head', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 5);
    await tamper(database, 'DELETE FROM audit_log WHERE seq >= 4');
    expect(await verifyAuditChain(database)).toEqual({
      ok: false,
      entries: 3,
      brokenAt: 4,
      reason: 'entries after seq 3 were deleted (chain head says 5)',
    });

    await tamper(database, 'DELETE FROM audit_log');
    expect(await verifyAuditChain(database)).toEqual({
      ok: false,
      entries: 0,
      brokenAt: 1,
      reason: 'entries after seq 0 were deleted (chain head says 5)',
    });
  });

  it('finds an entry inserted behind the append code', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 2);
    const head = await chainHead(database);
    await database.query(
      `INSERT INTO audit_log (seq, occurred_at, actor_label, action, outcome, prev_hash, hash)
       VALUES (3, now(), 'system', 'test.forged', 'success', $1, $1)`,
      [head?.last_hash],
    );
    expect(await verifyAuditChain(database)).toMatchObject({ ok: false, entries: 2, brokenAt: 3 });
  });

  it('stops appending with a clear error when the chain head row is gone but entries remain', async () => {
    const database = await migratedDatabase();
    await appendMany(database, 2);
    await database.transaction(async (tx) => {
      await tx.exec('ALTER TABLE audit_chain_head DISABLE TRIGGER USER');
      await tx.query('DELETE FROM audit_chain_head');
      await tx.exec('ALTER TABLE audit_chain_head ENABLE TRIGGER USER');
    });
    expect(await verifyAuditChain(database)).toMatchObject({ ok: false, entries: 2, brokenAt: 3 });
    const error = await refusal(recordAudit(database, entry('test.after')));
    expect(error).toBeInstanceOf(TollgateError);
    expect((error as TollgateError).code).toBe('audit_chain_broken');
    expect(await entryCount(database)).toBe(2);
  });

  it('leaves no entry and no head change when the recorded action rolls back', async () => {
    const database = await migratedDatabase();
    const failing = (action: string) =>
      refusal(
        database.transaction(async (tx) => {
          await appendAuditEntry(tx, entry(action));
          throw new Error('the action failed after its audit entry');
        }),
      );

    await failing('test.first_rolled_back');
    expect(await entryCount(database)).toBe(0);
    expect(await chainHead(database)).toBeUndefined();

    const kept = await recordAudit(database, entry('test.kept'));
    const headBefore = await chainHead(database);
    await failing('test.rolled_back');
    expect(await entryCount(database)).toBe(1);
    expect(await chainHead(database)).toEqual(headBefore);

    const next = await database.transaction(async (tx) => {
      await tx.query(`INSERT INTO teams (name, slug) VALUES ('Acme', 'acme')`);
      return appendAuditEntry(tx, entry('team.created'));
    });
    expect(next).toMatchObject({ seq: 2, prevHash: kept.hash });
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 2 });
  });

  it('verifies details whose nested keys PostgreSQL stores in another order', async () => {
    const database = await migratedDatabase();
    const details = {
      zeta: { second: [{ y: 1, x: 2 }], first: 'a' },
      alpha: [3, 1, 2],
      '10': true,
      '9': null,
      mid: { b: { d: 1, c: 0.1 }, a: -5 },
      dropped: undefined,
    };
    const stored = await recordAudit(database, entry('test.details', { details }));
    const { dropped: _dropped, ...kept } = details;
    expect(stored.details).toEqual(kept);
    const raw = await database.query<{ text: string }>('SELECT details::text AS text FROM audit_log');
    expect(raw.rows[0]?.text).not.toBe(JSON.stringify(kept));
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 1 });
  });

  it('records text an attacker controls without failing: NUL, lone surrogates, a bogus IP, long values', async () => {
    const database = await migratedDatabase();
    const stored = await recordAudit(database, {
      actorLabel: `eve\u0000@example.com\uD800${'x'.repeat(1000)}`,
      action: 'auth.login_failed',
      outcome: 'failure',
      ip: 'not-an-ip, 10.0.0.1',
      userAgent: 'u'.repeat(5000),
      details: { note: 'a\u0000b', '\uDC00key': 1 },
    });
    expect(stored.actorLabel.startsWith('eve\uFFFD@example.com\uFFFD')).toBe(true);
    expect(stored.actorLabel).toHaveLength(320);
    expect(stored.ip).toBeNull();
    expect(stored.details).toEqual({ note: 'a\uFFFDb', '\uFFFDkey': 1, ip_unparsed: 'not-an-ip, 10.0.0.1' });
    expect(stored.userAgent).toHaveLength(512);

    const scoped = await recordAudit(database, entry('test.scoped_ip', { ip: 'fe80::1%eth0' }));
    expect(scoped.ip).toBe('fe80::1');
    const mapped = await recordAudit(database, entry('test.mapped_ip', { ip: '::ffff:127.0.0.1' }));
    expect(mapped.ip).toBe('::ffff:127.0.0.1');
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 3 });
  });

  it('rejects malformed entries from calling code before writing anything', async () => {
    const database = await migratedDatabase();
    await expect(recordAudit(database, entry('Login'))).rejects.toThrow(TypeError);
    await expect(recordAudit(database, entry('auth.login', { outcome: 'ok' as never }))).rejects.toThrow(TypeError);
    await expect(recordAudit(database, entry('auth.login', { teamId: 'team-1' }))).rejects.toThrow(/teamId/);
    await expect(recordAudit(database, entry('auth.login', { actorLabel: ' ' }))).rejects.toThrow(/actorLabel/);
    expect(await entryCount(database)).toBe(0);
  });

  it('verifies a chain longer than one page', async () => {
    const database = await migratedDatabase();
    await database.transaction(async (tx) => {
      for (let index = 0; index < 1005; index++) await appendAuditEntry(tx, entry('test.bulk'));
    });
    expect(await verifyAuditChain(database)).toEqual({ ok: true, entries: 1005 });
    await tamper(database, `UPDATE audit_log SET outcome = 'denied' WHERE seq = 1003`);
    expect(await verifyAuditChain(database)).toMatchObject({ ok: false, entries: 1002, brokenAt: 1003 });
  });

  it('lists entries newest first by action prefix, actor, team, time, with a limit and seq pagination', async () => {
    const database = await migratedDatabase();
    await recordAudit(database, entry('auth.login'));
    await recordAudit(database, entry('auth.login_failed', { actorUserId: undefined, actorLabel: 'anonymous' }));
    await recordAudit(
      database,
      entry('team.created', { actorUserId: bob, actorLabel: 'bob@example.com', teamId: teamA }),
    );
    await sleep(5);
    const middle = new Date();
    await sleep(5);
    await recordAudit(database, entry('auth.logout'));
    await recordAudit(database, entry('authx.other'));
    await recordAudit(database, entry('key.created', { teamId: teamA }));

    const seqs = async (filter: Parameters<typeof listAuditEntries>[1]) =>
      (await listAuditEntries(database, filter)).map((item) => item.seq);

    expect(await seqs({})).toEqual([6, 5, 4, 3, 2, 1]);
    expect(await seqs({ action: 'auth.*' })).toEqual([4, 2, 1]);
    expect(await seqs({ action: 'auth.login' })).toEqual([1]);
    expect(await seqs({ action: 'auth.login*' })).toEqual([2, 1]);
    expect(await seqs({ actorUserId: alice })).toEqual([6, 5, 4, 1]);
    expect(await seqs({ actorUserId: bob.toUpperCase() })).toEqual([3]);
    expect(await seqs({ teamId: teamA })).toEqual([6, 3]);
    expect(await seqs({ since: middle })).toEqual([6, 5, 4]);
    expect(await seqs({ until: middle })).toEqual([3, 2, 1]);
    expect(await seqs({ action: 'auth.*', since: middle })).toEqual([4]);
    expect(await seqs({ limit: 2 })).toEqual([6, 5]);
    expect(await seqs({ limit: 2, beforeSeq: 5 })).toEqual([4, 3]);
    expect(await seqs({ limit: 2, beforeSeq: 3 })).toEqual([2, 1]);
    expect(await seqs({ limit: 2, beforeSeq: 1 })).toEqual([]);

    for (const filter of [{ limit: 0 }, { limit: 1001 }, { beforeSeq: 1.5 }, { teamId: 'acme' }]) {
      const error = await refusal(listAuditEntries(database, filter));
      expect(error).toBeInstanceOf(TollgateError);
      expect((error as TollgateError).code).toBe('validation_failed');
    }
  });
});

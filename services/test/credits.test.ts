import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import { consumeCredits } from '../src/credits/credit-ledger.js';
import { fulfilPackPurchase } from '../src/credits/credit-packs.js';
import { accountsOn, type Json, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);

beforeAll(async () => {
  testApi = await startTestApi();
});
afterAll(async () => {
  await testApi.dispose();
});

/** Everything a credits write touches, to prove a refused one changed nothing. */
async function creditState(): Promise<unknown> {
  const rows = async (sql: string) => (await testApi.database.query(sql)).rows;
  return {
    packs: await rows('SELECT * FROM credit_packs ORDER BY slug'),
    prices: await rows('SELECT * FROM credit_pack_prices ORDER BY pack_id, currency'),
    entries: await rows('SELECT * FROM credit_entries ORDER BY seq'),
    balances: await rows('SELECT * FROM credit_balances ORDER BY team_id, pool'),
    audit: await rows("SELECT count(*)::int AS n FROM audit_log WHERE action LIKE 'credit%'"),
  };
}

const slug = (label: string) => `${label}-${randomBytes(3).toString('hex')}`;

describe(`credits over HTTP (${expectedDatabaseDriver})`, () => {
  let operator: SignedInAccount;
  let owner: SignedInAccount;
  let plain: SignedInAccount;
  let outsider: SignedInAccount;
  let team: { id: string; slug: string };
  let otherTeam: { id: string; slug: string };

  beforeAll(async () => {
    [operator, owner, plain, outsider] = await Promise.all([
      account('operator', 'admin'),
      account('owner'),
      account('plain'),
      account('outsider'),
    ]);
    const created = await call(owner, 'POST', '/v1/teams', { name: `Credits ${randomBytes(3).toString('hex')}` });
    expect(created.status).toBe(201);
    team = created.body;
    await testApi.database.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'user')`, [
      team.id,
      plain.id,
    ]);
    const other = await call(outsider, 'POST', '/v1/teams', { name: `Other ${randomBytes(3).toString('hex')}` });
    otherTeam = other.body;
  });

  it('creates, lists and archives packs; everyone signed in reads them', async () => {
    const packSlug = slug('million-calls');
    const created = await call(operator, 'POST', '/v1/credit-packs', {
      slug: packSlug,
      name: '1,000,000 calls',
      prices: [
        { currency: 'USD', amount: '49' },
        { currency: 'EUR', amount: '45.50' },
      ],
      grant: { metric: 'calls', units: 1_000_000 },
      validity_days: 365,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      slug: packSlug,
      prices: [
        { currency: 'EUR', amount: '45.50', amount_minor: '4550' },
        { currency: 'USD', amount: '49.00', amount_minor: '4900' },
      ],
      grant: { metric: 'calls', currency: null, amount: '1000000', display: '1,000,000 calls' },
      validity_days: 365,
      archived_at: null,
    });
    const listed = await call(plain, 'GET', '/v1/credit-packs');
    expect(listed.status).toBe(200);
    expect(listed.body.packs.map((pack: Json) => pack.slug)).toContain(packSlug);
    const archived = await call(operator, 'POST', `/v1/credit-packs/${packSlug}/archive`);
    expect(archived.status).toBe(200);
    expect(archived.body.archived_at).not.toBeNull();
    expect((await call(plain, 'GET', '/v1/credit-packs')).body.packs.map((pack: Json) => pack.slug)).not.toContain(
      packSlug,
    );
    expect(
      (await call(plain, 'GET', '/v1/credit-packs?archived=true')).body.packs.map((pack: Json) => pack.slug),
    ).toContain(packSlug);
    expect((await call(operator, 'POST', '/v1/credit-packs/no-such-pack/archive')).status).toBe(404);
    expect((await call(undefined, 'GET', '/v1/credit-packs')).status).toBe(401);
  });

  it('shows a bought pack consumed through overage, with the exact balance at every step', async () => {
    const packSlug = slug('usd50');
    const created = await call(operator, 'POST', '/v1/credit-packs', {
      slug: packSlug,
      name: '$50 of credit',
      prices: [{ currency: 'USD', amount: '45' }],
      grant: { currency: 'USD', amount: '50.00' },
    });
    expect(created.status).toBe(201);
    await testApi.database.transaction((tx) =>
      fulfilPackPurchase(tx, { teamId: team.id, packSlug, paymentReference: `pi_${randomBytes(6).toString('hex')}` }),
    );
    const balance = async () =>
      (await call(owner, 'GET', `/v1/teams/${team.slug}/credits`)).body.balances.find(
        (entry: Json) => entry.currency === 'USD',
      );
    expect(await balance()).toMatchObject({ balance: '50.00', balance_minor: '5000', display: '$50.00' });
    // 50,000 overage calls at $0.0005: $25.00.
    await testApi.database.transaction((tx) =>
      consumeCredits(tx, { teamId: team.id, pool: { currency: 'USD' }, wanted: 2500n, idempotencyKey: 'p1:calls' }),
    );
    expect(await balance()).toMatchObject({ balance: '25.00', balance_minor: '2500' });
    const second = await testApi.database.transaction((tx) =>
      consumeCredits(tx, { teamId: team.id, pool: { currency: 'USD' }, wanted: 3001n, idempotencyKey: 'p2:calls' }),
    );
    expect(second.taken).toBe(2500n);
    expect(await balance()).toMatchObject({ balance: '0.00', balance_minor: '0' });
    const ledger = await call(owner, 'GET', `/v1/teams/${team.slug}/credits?limit=2`);
    expect(ledger.body.entries.map((entry: Json) => [entry.kind, entry.amount, entry.balance_after])).toEqual([
      ['consumption', '-25.00', '0.00'],
      ['consumption', '-25.00', '25.00'],
    ]);
    expect(ledger.body.entries[0].requested).toBe('30.01');
    const next = await call(owner, 'GET', `/v1/teams/${team.slug}/credits?limit=2&before=${ledger.body.next_before}`);
    expect(next.body.entries.map((entry: Json) => [entry.kind, entry.amount, entry.pack])).toEqual([
      ['grant', '50.00', packSlug],
    ]);
    expect(next.body.next_before).toBeNull();
  });

  it('lets operators grant credits with a reason, audited; a retried grant changes nothing', async () => {
    const body = { currency: 'EUR', amount: '12.34', reason: 'outage credit', idempotency_key: slug('grant') };
    const granted = await call(operator, 'POST', `/v1/teams/${team.slug}/credits/grants`, body);
    expect(granted.status, JSON.stringify(granted.body)).toBe(201);
    expect(granted.body.entry).toMatchObject({
      kind: 'grant',
      amount: '12.34',
      source: 'operator',
      reason: 'outage credit',
    });
    expect(granted.body.balance).toMatchObject({ currency: 'EUR', balance: '12.34' });
    const again = await call(operator, 'POST', `/v1/teams/${team.slug}/credits/grants`, body);
    expect(again.status).toBe(200);
    expect(again.body.entry.id).toBe(granted.body.entry.id);
    expect(again.body.balance.balance).toBe('12.34');
    const units = await call(operator, 'POST', `/v1/teams/${team.slug}/credits/grants`, {
      metric: 'calls',
      units: '250000',
      reason: 'trial extension',
      expires_in_days: 30,
    });
    expect(units.status).toBe(201);
    expect(units.body.balance).toMatchObject({ metric: 'calls', balance: '250000' });
    expect(units.body.balance.next_expiry.amount).toBe('250000');
    const audit = await testApi.database.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'credits.granted' AND team_id = $1",
      [team.id],
    );
    expect(audit.rows[0]?.n).toBe(2);
  });

  it('sets the low-balance threshold for team admins', async () => {
    const set = await call(owner, 'PUT', `/v1/teams/${team.slug}/credits/low-balance`, {
      currency: 'EUR',
      below: '20',
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ currency: 'EUR', low_balance_below: '20.00', below_threshold: true });
    const cleared = await call(owner, 'PUT', `/v1/teams/${team.slug}/credits/low-balance`, {
      currency: 'EUR',
      below: null,
    });
    expect(cleared.body).toMatchObject({ low_balance_below: null, below_threshold: false });
  });

  it('refuses bad input with 400 validation_failed (or 404) and writes nothing', async () => {
    const before = await creditState();
    const grants = `/v1/teams/${team.slug}/credits/grants`;
    const cases: [string, string, unknown, number][] = [
      ['POST', grants, { currency: 'USD', amount: '-5', reason: 'x' }, 400],
      ['POST', grants, { currency: 'USD', amount: '0', reason: 'x' }, 400],
      ['POST', grants, { currency: 'JPY', amount: '5', reason: 'x' }, 400],
      ['POST', grants, { currency: 'USD', amount: '0.001', reason: 'x' }, 400],
      ['POST', grants, { metric: 'calls', units: -3, reason: 'x' }, 400],
      ['POST', grants, { metric: 'calls', units: '1.5', reason: 'x' }, 400],
      ['POST', grants, { currency: 'USD', amount: '5' }, 400],
      ['POST', grants, { currency: 'USD', amount: '5', metric: 'calls', units: 5, reason: 'x' }, 400],
      [
        'POST',
        '/v1/credit-packs',
        {
          slug: slug('p'),
          name: 'P',
          prices: [{ currency: 'USD', amount: '-1' }],
          grant: { metric: 'calls', units: 5 },
        },
        400,
      ],
      [
        'POST',
        '/v1/credit-packs',
        {
          slug: slug('p'),
          name: 'P',
          prices: [{ currency: 'XXX', amount: '1' }],
          grant: { metric: 'calls', units: 5 },
        },
        400,
      ],
      [
        'POST',
        '/v1/credit-packs',
        {
          slug: slug('p'),
          name: 'P',
          prices: [{ currency: 'USD', amount: '1.999' }],
          grant: { currency: 'USD', amount: '2' },
        },
        400,
      ],
      [
        'POST',
        '/v1/credit-packs',
        {
          slug: slug('p'),
          name: 'P',
          prices: [{ currency: 'USD', amount: '1' }],
          grant: { metric: 'calls', units: 0 },
        },
        400,
      ],
      ['PUT', `/v1/teams/${team.slug}/credits/low-balance`, { currency: 'USD', below: '-1' }, 400],
      ['PUT', `/v1/teams/${team.slug}/credits/low-balance`, { currency: 'USD', below: '1.001' }, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const answer = await call(operator, method, path, body);
      expect(answer.status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`).toBe(status);
      expect(answer.body.error.code).toBe('validation_failed');
    }
    // Another team's credits: the owner of this team is not a member there.
    expect((await call(owner, 'GET', `/v1/teams/${otherTeam.slug}/credits`)).status).toBe(404);
    expect(
      (await call(owner, 'PUT', `/v1/teams/${otherTeam.slug}/credits/low-balance`, { currency: 'USD', below: '5' }))
        .status,
    ).toBe(404);
    expect((await call(operator, 'GET', `/v1/teams/${team.slug}/credits?limit=0`)).status).toBe(400);
    expect(await creditState()).toEqual(before);
  });

  it('answers 403 to a plain user on operator and admin routes, and writes nothing but the denial', async () => {
    const before = await creditState();
    const denied: [SignedInAccount, string, string, unknown][] = [
      [
        plain,
        'POST',
        '/v1/credit-packs',
        {
          slug: slug('p'),
          name: 'P',
          prices: [{ currency: 'USD', amount: '1' }],
          grant: { metric: 'calls', units: 5 },
        },
      ],
      [owner, 'POST', `/v1/teams/${team.slug}/credits/grants`, { currency: 'USD', amount: '5', reason: 'me' }],
      [plain, 'POST', `/v1/teams/${team.slug}/credits/grants`, { currency: 'USD', amount: '5', reason: 'me' }],
      [plain, 'PUT', `/v1/teams/${team.slug}/credits/low-balance`, { currency: 'USD', below: '5' }],
      [plain, 'GET', `/v1/teams/${team.slug}/credits`, undefined],
    ];
    for (const [who, method, path, body] of denied) {
      const answer = await call(who, method, path, body);
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(answer.body.error.code).toBe('forbidden');
    }
    expect(await creditState()).toEqual(before);
  });

  it('audits every write in the hash chain and describes the routes in OpenAPI', async () => {
    expect((await verifyAuditChain(testApi.database)).ok).toBe(true);
    const openapi = await call(undefined, 'GET', '/v1/openapi.json');
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/credit-packs',
        '/v1/credit-packs/{pack}/archive',
        '/v1/teams/{team}/credits',
        '/v1/teams/{team}/credits/grants',
        '/v1/teams/{team}/credits/low-balance',
      ]),
    );
  });
});

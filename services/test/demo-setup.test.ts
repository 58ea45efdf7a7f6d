import { afterEach, describe, expect, it } from 'vitest';
import { createApi, findApi, listApis } from '../src/apis/apis.js';
import { listAuditEntries } from '../src/audit/index.js';
import { setUpDemo } from '../src/demo/demo-setup.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { loadTeamPolicy } from '../src/plans/team-policy.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { expectedDatabaseDriver, openTestDatabase } from './support/backends.js';

const disposals: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const dispose of disposals.splice(0)) await dispose();
});

async function freshInstallation(): Promise<Database> {
  const opened = await openTestDatabase();
  disposals.push(opened.dispose);
  await runMigrations(opened.value);
  await opened.value.transaction((tx) =>
    createUserWithPassword(tx, {
      email: 'operator@example.com',
      password: 'demo test passphrase long 1',
      installationRole: 'admin',
    }),
  );
  return opened.value;
}

describe(`the demo set-up (${expectedDatabaseDriver})`, () => {
  it('adds the demo beside existing APIs without touching them, and re-points only its own API later', async () => {
    const database = await freshInstallation();
    await database.transaction((tx) =>
      createApi(tx, { slug: 'weather', name: 'Weather', upstreams: ['https://weather.example.com'] }),
    );
    const weatherBefore = await findApi(database, 'weather');

    const first = await setUpDemo(database, { upstreamUrl: 'http://127.0.0.1:40001' });
    expect(first).toMatchObject({
      api: { slug: 'demo', created: true },
      plan: { slug: 'demo', created: true },
      team: { slug: 'demo', created: true, subscribed: true },
      earlierKeyPrefixes: [],
    });
    expect(first.newKey?.secret).toMatch(/^tg_live_/);
    expect(first.configVersion).toBeGreaterThan(0);
    const policy = await loadTeamPolicy(database, first.team.id);
    expect(policy).toMatchObject({
      planSlug: 'demo',
      limits: { second: 10, hour: 1000 },
      monthlyCallQuota: 1000,
      overageAllowed: true,
    });

    const second = await setUpDemo(database, { upstreamUrl: 'http://127.0.0.1:40002' });
    expect(second).toMatchObject({
      api: { id: first.api.id, created: false, upstreamChanged: true },
      plan: { id: first.plan.id, created: false },
      team: { id: first.team.id, created: false, subscribed: false },
      newKey: undefined,
      earlierKeyPrefixes: [first.newKey?.prefix],
    });
    expect((await findApi(database, 'demo'))?.upstreams).toEqual(['http://127.0.0.1:40002']);
    // Same port again: no new routing version.
    expect((await setUpDemo(database, { upstreamUrl: 'http://127.0.0.1:40002' })).configVersion).toBeUndefined();
    // Asked for, a new key.
    const third = await setUpDemo(database, { upstreamUrl: 'http://127.0.0.1:40002', newKey: true });
    expect(third.newKey?.prefix).not.toBe(first.newKey?.prefix);

    expect(await findApi(database, 'weather')).toEqual(weatherBefore);
    expect((await listApis(database)).map((api) => api.slug)).toEqual(['demo', 'weather']);
    const actions = (await listAuditEntries(database, { teamId: first.team.id })).map((entry) => entry.action);
    expect(actions.sort()).toEqual(
      ['api.created', 'api.updated', 'key.created', 'key.created', 'subscription.created', 'team.created'].sort(),
    );
  });

  it('refuses an API called demo that the demo did not make, and writes nothing', async () => {
    const database = await freshInstallation();
    await database.transaction((tx) =>
      createApi(tx, { slug: 'demo', name: 'Our demo', upstreams: ['https://demo.example.com'] }),
    );
    await expect(setUpDemo(database, { upstreamUrl: 'http://127.0.0.1:40003' })).rejects.toMatchObject({
      code: 'slug_taken',
    });
    expect((await findApi(database, 'demo'))?.upstreams).toEqual(['https://demo.example.com']);
    const teams = await database.query('SELECT 1 FROM teams');
    const plans = await database.query(`SELECT 1 FROM plans WHERE slug = 'demo'`);
    expect([teams.rowCount, plans.rowCount]).toEqual([0, 0]);
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsOn, type Json, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);

beforeAll(async () => {
  testApi = await startTestApi();
});
afterAll(async () => {
  await testApi?.dispose();
});

const tag = () => randomBytes(3).toString('hex');

type Account = SignedInAccount;

describe(`listing a team's credit pack purchases (${expectedDatabaseDriver})`, () => {
  let operator: Account;
  let owner: Account;
  let plain: Account;
  let outsider: Account;
  let team: { id: string; slug: string };
  let otherTeam: { id: string; slug: string };
  let moneyPack: string;
  let callsPack: string;
  /** Purchase ids in the order they were made. */
  const bought: string[] = [];

  beforeAll(async () => {
    [operator, owner, plain, outsider] = await Promise.all([
      account('operator', 'admin'),
      account('owner'),
      account('plain'),
      account('outsider'),
    ]);
    team = (await call(owner, 'POST', '/v1/teams', { name: `Buyer ${tag()}` })).body;
    otherTeam = (await call(outsider, 'POST', '/v1/teams', { name: `Other ${tag()}` })).body;
    await testApi.database.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'user')`, [
      team.id,
      plain.id,
    ]);
    moneyPack = `usd-${tag()}`;
    callsPack = `calls-${tag()}`;
    expect(
      (
        await call(operator, 'POST', '/v1/credit-packs', {
          slug: moneyPack,
          name: 'Fifty dollars',
          prices: [{ currency: 'USD', amount: '45.00' }],
          grant: { currency: 'USD', amount: '50.00' },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await call(operator, 'POST', '/v1/credit-packs', {
          slug: callsPack,
          name: 'A million calls',
          prices: [{ currency: 'USD', amount: '9.99' }],
          grant: { metric: 'calls', units: 1_000_000 },
        })
      ).status,
    ).toBe(201);
    for (const pack of [moneyPack, callsPack, moneyPack]) {
      const started = await call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
      expect(started.status).toBe(201);
      bought.push(started.body.id);
    }
    // The first two are paid (an operator confirms them, as for bank transfers); the last stays pending.
    for (const id of bought.slice(0, 2)) {
      expect((await call(operator, 'POST', `/v1/credits/purchases/${id}/confirm`)).status).toBe(200);
    }
    await call(outsider, 'POST', `/v1/teams/${otherTeam.slug}/credits/purchases`, { pack: moneyPack });
  });

  it('lists every purchase newest first with its pack, price, grant, status and provider reference', async () => {
    const listed = await call(owner, 'GET', `/v1/teams/${team.slug}/credits/purchases`);
    expect(listed.status).toBe(200);
    expect(listed.body.next_before).toBeNull();
    expect(listed.body.purchases.map((purchase: Json) => purchase.id)).toEqual([...bought].reverse());
    const [pending, calls, money] = listed.body.purchases;
    expect(pending).toMatchObject({
      pack: moneyPack,
      status: 'pending',
      currency: 'USD',
      amount: '45.00',
      amount_minor: '4500',
      grant: { currency: 'USD', metric: null, amount: '50.00', amount_minor: '5000' },
      granted: false,
      provider: 'manual',
      provider_reference: null,
      paid_at: null,
    });
    expect(calls).toMatchObject({
      pack: callsPack,
      status: 'paid',
      amount_minor: '999',
      grant: { currency: null, metric: 'calls', amount_minor: '1000000' },
      granted: true,
      provider_reference: `manual:${bought[1]}`,
    });
    expect(Date.parse(calls.paid_at)).not.toBeNaN();
    expect(money).toMatchObject({ status: 'paid', granted: true, provider_reference: `manual:${bought[0]}` });
    // Another team's purchase is not listed here.
    expect(listed.body.purchases).toHaveLength(3);
  });

  it('pages with limit and before, every purchase once', async () => {
    const first = await call(owner, 'GET', `/v1/teams/${team.slug}/credits/purchases?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.purchases.map((purchase: Json) => purchase.id)).toEqual([bought[2], bought[1]]);
    expect(first.body.next_before).toBe(bought[1]);
    const second = await call(
      owner,
      'GET',
      `/v1/teams/${team.slug}/credits/purchases?limit=2&before=${first.body.next_before}`,
    );
    expect(second.body.purchases.map((purchase: Json) => purchase.id)).toEqual([bought[0]]);
    expect(second.body.next_before).toBeNull();
  });

  it('is for members with billing read only, and refuses a bad page with validation_failed', async () => {
    expect((await call(plain, 'GET', `/v1/teams/${team.slug}/credits/purchases`)).status).toBe(403);
    expect([403, 404]).toContain((await call(outsider, 'GET', `/v1/teams/${team.slug}/credits/purchases`)).status);
    expect((await call(undefined, 'GET', `/v1/teams/${team.slug}/credits/purchases`)).status).toBe(401);
    const foreign = (await call(outsider, 'GET', `/v1/teams/${otherTeam.slug}/credits/purchases`)).body.purchases[0].id;
    for (const query of ['limit=0', 'limit=201', 'limit=abc', `before=${foreign}`, 'before=not-an-id']) {
      const refused = await call(owner, 'GET', `/v1/teams/${team.slug}/credits/purchases?${query}`);
      expect(refused.status, query).toBe(400);
      expect(refused.body.error.code).toBe('validation_failed');
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertToBase } from '../src/billing/exchange-rates.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);
let operator: SignedInAccount;
let member: SignedInAccount;

async function rateRows(): Promise<number> {
  const result = await testApi.database.query<{ n: string }>('SELECT count(*) AS n FROM exchange_rates');
  return Number(result.rows[0]?.n);
}

beforeAll(async () => {
  testApi = await startTestApi();
  [operator, member] = await Promise.all([account('rates', 'admin'), account('rates', 'member')]);
});
afterAll(async () => {
  await testApi?.dispose();
});

describe(`exchange rates (${expectedDatabaseDriver})`, () => {
  it('lets operators set rates, keeps their history, and converts at the rate in force at a time', async () => {
    const january = '2026-01-01T00:00:00.000Z';
    const first = await call(operator, 'PUT', '/v1/billing/rates/EUR', { rate: '1.0800', effective_at: january });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ currency: 'EUR', base_currency: 'USD', rate: '1.08', effective_at: january });
    const later = await call(operator, 'PUT', '/v1/billing/rates/eur', { rate: '0.92' });
    expect(later.body).toMatchObject({ currency: 'EUR', rate: '0.92' });
    await call(operator, 'PUT', '/v1/billing/rates/GBP', { rate: '1.271234567891' });

    const listed = await call(member, 'GET', '/v1/billing/rates');
    expect(listed.status).toBe(200);
    expect(listed.body.base_currency).toBe('USD');
    expect(listed.body.rates.map((rate: { currency: string; rate: string }) => [rate.currency, rate.rate])).toEqual([
      ['EUR', '0.92'],
      ['GBP', '1.271234567891'],
    ]);
    const history = await call(member, 'GET', '/v1/billing/rates?history=true');
    expect(history.body.rates.map((rate: { rate: string }) => rate.rate)).toEqual(['0.92', '1.08', '1.271234567891']);

    // 1,234.56 EUR in February (1.08): 1,333.3248 USD, half up to 1,333.32; now (0.92): 1,135.7952 -> 1,135.80.
    const february = await convertToBase(testApi.database, {
      amountMinor: 123_456n,
      currency: 'EUR',
      at: new Date('2026-02-01T00:00:00Z'),
      baseCurrency: 'USD',
    });
    expect(february).toMatchObject({ amountMinor: 133_332n, rate: '1.08' });
    const today = await convertToBase(testApi.database, {
      amountMinor: 123_456n,
      currency: 'EUR',
      at: new Date(),
      baseCurrency: 'USD',
    });
    expect(today).toMatchObject({ amountMinor: 113_580n, rate: '0.92' });
    // 0.01 GBP at 1.271234567891 is 1.27... cents: 1.
    expect(
      (await convertToBase(testApi.database, { amountMinor: 1n, currency: 'GBP', at: new Date(), baseCurrency: 'USD' }))
        .amountMinor,
    ).toBe(1n);
    // The base currency converts to itself; before any rate there is none to use.
    expect(
      (await convertToBase(testApi.database, { amountMinor: 5n, currency: 'USD', at: new Date(), baseCurrency: 'USD' }))
        .amountMinor,
    ).toBe(5n);
    await expect(
      convertToBase(testApi.database, {
        amountMinor: 5n,
        currency: 'EUR',
        at: new Date('2025-01-01T00:00:00Z'),
        baseCurrency: 'USD',
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
  });

  it('refuses a bad rate, an unknown currency, the base currency and non-operators, writing nothing', async () => {
    const before = await rateRows();
    for (const rate of ['0', '-0.92', 'abc', '1e2', '0.0000000000001', '']) {
      const answer = await call(operator, 'PUT', '/v1/billing/rates/EUR', { rate });
      expect(answer.status, rate).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      expect(answer.body.error.message).toMatch(/^rate: /);
    }
    expect((await call(operator, 'PUT', '/v1/billing/rates/EUR', { rate: 0.92 })).status).toBe(400);
    expect((await call(operator, 'PUT', '/v1/billing/rates/XYZ', { rate: '1.1' })).body.error.message).toMatch(
      /^currency: "XYZ" is not a currency/,
    );
    expect((await call(operator, 'PUT', '/v1/billing/rates/USD', { rate: '1.1' })).body.error.message).toMatch(
      /^currency: USD is the base currency/,
    );
    const denied = await call(member, 'PUT', '/v1/billing/rates/EUR', { rate: '0.9' });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('forbidden');
    expect((await call(undefined, 'PUT', '/v1/billing/rates/EUR', { rate: '0.9' })).status).toBe(401);
    expect((await call(undefined, 'GET', '/v1/billing/rates')).status).toBe(401);
    expect(await rateRows()).toBe(before);
  });
});

import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

// A fresh installation signs the CLI in as its first operator (admin@localhost), who may manage APIs.
beforeAll(async () => {
  api = await startApi('apis');
  ({ env } = api);
});

afterAll(() => api?.dispose());

describe(`tollgate apis (${expectedDatabaseDriver})`, () => {
  it('creates, lists, shows, updates and deletes an API', async () => {
    const created = await runCli(
      [
        'apis',
        'create',
        '--name',
        'Weather',
        '--slug',
        'weather',
        '--upstream',
        'https://eu.weather.example/v2/',
        '--upstream',
        'https://us.weather.example',
        '--host',
        'API.weather.example',
        '--path-prefix',
        '/weather/v1',
        '--timeout',
        '10s',
        '--failure-policy',
        'fail-open',
        '--json',
      ],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      slug: 'weather',
      name: 'Weather',
      upstreams: ['https://eu.weather.example/v2', 'https://us.weather.example'],
      hosts: ['api.weather.example'],
      path_prefix: '/weather/v1',
      timeout_ms: 10_000,
      failure_policy: 'fail-open',
      metered_metrics: ['calls', 'bandwidth'],
    });

    const human = await runCli(['apis', 'create', '--name', 'Maps Service', '--upstream', 'http://10.1.2.3:8080'], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toBe('Registered Maps Service (maps-service), served at /maps-service.\n');

    const list = await runCli(['apis', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(listed.apis.map((api: { slug: string }) => api.slug)).toEqual(['maps-service', 'weather']);
    expect(listed.config_version).toBe(2);
    // Not a terminal: tab-separated, a header first.
    const table = await runCli(['apis', 'list'], env);
    expect(table.stdout.split('\n')[0]).toBe('slug\tname\thosts\tpath prefix\tupstreams\ttimeout\tpolicy');
    expect(table.stdout).toContain(
      'weather\tWeather\tapi.weather.example\t/weather/v1\thttps://eu.weather.example/v2,https://us.weather.example\t10s\tfail-open',
    );

    const shown = await runCli(['apis', 'show', 'weather'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^upstreams\thttps:\/\/eu\.weather\.example\/v2, https:\/\/us\.weather\.example$/m);
    expect(shown.stdout).toMatch(/^timeout\t10s$/m);

    const updated = await runCli(
      [
        'apis',
        'update',
        'weather',
        '--upstream',
        'https://global.weather.example',
        '--timeout',
        '1500ms',
        '--clear-path-prefix',
        '--json',
      ],
      env,
    );
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({
      upstreams: ['https://global.weather.example'],
      timeout_ms: 1_500,
      path_prefix: null,
      hosts: ['api.weather.example'],
    });
    const shownJson = JSON.parse((await runCli(['apis', 'show', 'weather', '--json'], env)).stdout);
    expect(shownJson).toEqual(JSON.parse(updated.stdout));

    const deleted = await runCli(['apis', 'delete', 'weather', '--yes', '--json'], env);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ id: shownJson.id, slug: 'weather', revoked_key_ids: [] });
    const gone = await runCli(['apis', 'show', 'weather'], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^not_found: no such API/);
  });

  it('prints an error as code: message and exits 1, with nothing written', async () => {
    const bad = await runCli(['apis', 'create', '--name', 'Files', '--upstream', 'ftp://files.example'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^invalid_upstream: upstreams\.0: must use http or https, not ftp:/);
    const asJson = await runCli(
      ['apis', 'create', '--name', 'Files', '--upstream', 'ftp://files.example', '--json'],
      env,
    );
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout).error.code).toBe('invalid_upstream');
    const taken = await runCli(
      [
        'apis',
        'create',
        '--name',
        'Maps again',
        '--slug',
        'maps-2',
        '--upstream',
        'https://m.example',
        '--path-prefix',
        '/maps-service',
      ],
      env,
    );
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(
      /^path_prefix_taken: the path prefix \/maps-service is routed to the API maps-service/,
    );
    const list = JSON.parse((await runCli(['apis', 'list', '--json'], env)).stdout);
    expect(list.apis.map((api: { slug: string }) => api.slug)).toEqual(['maps-service']);
  });

  it('refuses usage errors with exit 2: a bad duration, nothing to update, a delete without a terminal or --yes', async () => {
    const duration = await runCli(['apis', 'update', 'maps-service', '--timeout', '10'], env);
    expect(duration.code).toBe(2);
    expect(duration.stderr).toMatch(/^usage_error: --timeout must be a duration like 30s/);
    const nothing = await runCli(['apis', 'update', 'maps-service'], env);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/^usage_error: nothing to change/);
    const unconfirmed = await runCli(['apis', 'delete', 'maps-service'], env);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/^usage_error: no terminal to confirm the deletion\nhint: pass --yes/);
    expect((await runCli(['apis', 'show', 'maps-service'], env)).code).toBe(0);
  });

  it('runs plugins in the order of --plugin NAME[=JSON], shows them, replaces and clears them', async () => {
    const created = await runCli(
      [
        'apis',
        'create',
        '--name',
        'Browser',
        '--upstream',
        'https://browser.example',
        '--plugin',
        'request-size-limit={"max_bytes":1024}',
        '--plugin',
        'cors',
        '--json',
      ],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout).plugins).toEqual([
      { name: 'request-size-limit', config: { max_bytes: 1024 } },
      { name: 'cors', config: {} },
    ]);
    const shown = await runCli(['apis', 'show', 'browser'], env);
    expect(shown.stdout).toMatch(/^plugins\trequest-size-limit=\{"max_bytes":1024\}; cors$/m);

    const replaced = await runCli(
      [
        'apis',
        'update',
        'browser',
        '--plugin',
        'cors={"origins":["https://app.example"],"max_age_seconds":60}',
        '--json',
      ],
      env,
    );
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(JSON.parse(replaced.stdout).plugins).toEqual([
      { name: 'cors', config: { origins: ['https://app.example'], max_age_seconds: 60 } },
    ]);
    const cleared = await runCli(['apis', 'update', 'browser', '--clear-plugins', '--json'], env);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout).plugins).toEqual([]);
  });

  it('refuses a plugin the API does not know or a config it refuses (exit 1), and bad JSON before any call (exit 2)', async () => {
    const before = (await runCli(['apis', 'show', 'maps-service', '--json'], env)).stdout;
    const unknown = await runCli(['apis', 'update', 'maps-service', '--plugin', 'geo-block'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^validation_failed: plugins\.0\.name: no plugin named geo-block/);
    const badConfig = await runCli(
      [
        'apis',
        'create',
        '--name',
        'Bad',
        '--upstream',
        'https://bad.example',
        '--plugin',
        'cors={"origins":"*"}',
        '--json',
      ],
      env,
    );
    expect(badConfig.code).toBe(1);
    expect(JSON.parse(badConfig.stdout).error).toMatchObject({
      code: 'validation_failed',
      message: 'plugins.0.config: origins: a non-empty list',
    });

    // Nothing listens on this URL: the JSON is refused before any call is tried.
    const offline = { ...env, TOLLGATE_API_URL: 'http://127.0.0.1:9' };
    for (const flag of ['cors={origins:*}', 'cors=["*"]', '={}']) {
      const bad = await runCli(['apis', 'update', 'maps-service', '--plugin', flag], offline);
      expect(bad.code, flag).toBe(2);
      expect(bad.stderr, flag).toMatch(/^usage_error: --plugin /);
    }
    const both = await runCli(['apis', 'update', 'maps-service', '--plugin', 'cors', '--clear-plugins'], env);
    expect(both.code).toBe(2);
    expect((await runCli(['apis', 'show', 'maps-service', '--json'], env)).stdout).toBe(before);
    const list = JSON.parse((await runCli(['apis', 'list', '--json'], env)).stdout);
    expect(list.apis.map((api: { slug: string }) => api.slug)).not.toContain('bad');
  });

  it('lists the plugins an API can run', async () => {
    const table = await runCli(['plugins', 'list'], env);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('name\tdescription');
    expect(lines.slice(1).map((line) => line.split('\t')[0])).toEqual(['cors', 'request-size-limit']);
    const json = await runCli(['plugins', 'list', '--json'], env);
    expect(JSON.parse(json.stdout).plugins).toContainEqual({
      name: 'request-size-limit',
      description: expect.stringContaining('max_bytes'),
    });
  });
});

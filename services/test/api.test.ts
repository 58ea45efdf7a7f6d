import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../src/api/create-api-app.js';
import type { CounterStore } from '../src/counters/counter-store.js';
import { listen, type RunningServer } from '../src/http/http-server.js';
import { createLogger } from '../src/logging/logger.js';
import type { Mailer } from '../src/mail/mailer.js';
import { createKeyring } from '../src/secrets/master-keyring.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  openTestCounters,
  openTestDatabase,
  silentLogger,
} from './support/backends.js';
import { createTestMailer } from './support/mail.js';

const config = { bodyLimitBytes: 64 * 1024, trustProxy: false, metricsToken: undefined };
const keyring = createKeyring({ current: randomBytes(32) });
let mailer: Mailer;

let database: Database;
let counters: CounterStore;
let server: RunningServer;
const logLines: string[] = [];
const disposers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const db = await openTestDatabase();
  const store = await openTestCounters();
  disposers.push(store.dispose, db.dispose);
  database = db.value;
  counters = store.value;
  const mail = await createTestMailer();
  disposers.push(mail.dispose);
  mailer = mail.mailer;
  await runMigrations(database);
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const { app } = createApiApp({ config, database, counters, logger, keyring, mailer });
  server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  disposers.unshift(() => server.close(1_000));
});

afterAll(async () => {
  for (const dispose of disposers) await dispose();
});

interface ErrorResponseBody {
  error: { code: string; message: string; request_id: string };
}

async function expectErrorShape(response: Response, status: number, code: string): Promise<ErrorResponseBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as ErrorResponseBody;
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.request_id).toBe(response.headers.get('x-request-id'));
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at |\.ts:\d+/);
  return body;
}

describe('control-plane API', () => {
  it('answers liveness with a request id', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(response.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9_-]{16}$/);
  });

  it('keeps a caller-supplied request id when it is plain, and replaces one that is not', async () => {
    const kept = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'trace-42.a_b' } });
    expect(kept.headers.get('x-request-id')).toBe('trace-42.a_b');
    const replaced = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'bad id <script>' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('reports readiness naming the backends in use', async () => {
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = await response.json();
    expect(body).toMatchObject({
      status: 'ready',
      checks: {
        database: { status: 'up', driver: expectedDatabaseDriver },
        counters: { status: 'up', driver: expectedCounterDriver },
      },
    });
  });

  it('answers unknown paths with 404 not_found in the error shape', async () => {
    await expectErrorShape(await fetch(`${server.url}/v1/nope`), 404, 'not_found');
  });

  it('answers a wrong method with 405 and the allowed ones', async () => {
    const response = await fetch(`${server.url}/healthz`, { method: 'DELETE' });
    await expectErrorShape(response, 405, 'method_not_allowed');
    expect(response.headers.get('allow')).toContain('GET');
  });

  it('refuses malformed JSON with 400 invalid_json', async () => {
    const response = await fetch(`${server.url}/v1/openapi.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": "acme",',
    });
    await expectErrorShape(response, 400, 'invalid_json');
  });

  it('refuses a body over the limit with 413 before reading it (declared length)', async () => {
    const response = await fetch(`${server.url}/v1/openapi.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(config.bodyLimitBytes) }),
    });
    const body = await expectErrorShape(response, 413, 'payload_too_large');
    expect(body.error.message).toContain(String(config.bodyLimitBytes));
  });

  it('refuses a chunked body with 413 as soon as it crosses the limit', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequest(
        `${server.url}/v1/openapi.json`,
        { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
        (response) => {
          let text = '';
          response.on('data', (chunk) => {
            text += chunk;
          });
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        },
      );
      request.on('error', reject);
      const chunk = 'x'.repeat(16 * 1024);
      for (let sent = 0; sent <= config.bodyLimitBytes; sent += chunk.length) request.write(chunk);
      request.end();
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).error.code).toBe('payload_too_large');
  });

  it('serves Prometheus metrics counting requests by matched route', async () => {
    await fetch(`${server.url}/healthz`);
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(
      /tollgate_http_requests_total\{component="api",method="GET",route="\/healthz",status="200"\} \d+/,
    );
    expect(text).toContain('tollgate_http_request_duration_seconds_bucket');
    expect(text).toContain('tollgate_process_cpu_user_seconds_total');
    // Unknown paths share one label value, so scanners cannot create unbounded series.
    await fetch(`${server.url}/random-${Date.now()}`);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/route="unmatched",status="404"/);
  });

  it('publishes a valid OpenAPI 3.1 document generated from the routes', async () => {
    const response = await fetch(`${server.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/healthz',
        '/metrics',
        '/readyz',
        '/v1/openapi.json',
        '/v1/auth/login',
        '/v1/sessions/{id}',
      ]),
    );
    const readyz = document.paths['/readyz']?.get?.responses;
    expect(Object.keys(readyz ?? {})).toEqual(['200', '503', 'default']);
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeTruthy();
  });

  it('logs one line per request without credentials', async () => {
    const response = await fetch(`${server.url}/healthz?api_key=tg_live_abc_querysecret&page=2`, {
      headers: { authorization: 'Bearer tg_live_abc_headersecret', cookie: 'session=cookiesecret' },
    });
    const requestId = response.headers.get('x-request-id') ?? '';
    await new Promise((resolve) => setTimeout(resolve, 50));
    const line = logLines.find((entry) => entry.includes(requestId));
    expect(line).toBeDefined();
    expect(JSON.parse(line ?? '{}')).toMatchObject({ msg: 'request', res: { status: 200 }, req: { method: 'GET' } });
    const all = logLines.join('');
    expect(all).not.toContain('querysecret');
    expect(all).not.toContain('headersecret');
    expect(all).not.toContain('cookiesecret');
    expect(line).toContain('page=2');
  });
});

describe('metrics token', () => {
  it('requires the bearer token when TOLLGATE_METRICS_TOKEN is set', async () => {
    const token = 'metrics-token-0123456789';
    const { app } = createApiApp({
      config: { ...config, metricsToken: token },
      database,
      counters,
      logger: silentLogger(),
      keyring,
      mailer,
    });
    const guarded = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    try {
      await expectErrorShape(await fetch(`${guarded.url}/metrics`), 401, 'unauthorized');
      const wrong = await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(right.status).toBe(200);
    } finally {
      await guarded.close(1_000);
    }
  });
});

describe('readiness when the database is gone', () => {
  it('answers 503 naming the database driver', async () => {
    const db = await openTestDatabase();
    const { app } = createApiApp({ config, database: db.value, counters, logger: silentLogger(), keyring, mailer });
    const running = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    try {
      await db.value.close();
      const response = await fetch(`${running.url}/readyz`);
      const body = (await expectErrorShape(response, 503, 'not_ready')) as ErrorResponseBody & {
        status: string;
        checks: Record<string, { status: string }>;
      };
      expect(body.status).toBe('not_ready');
      expect(body.checks.database?.status).toBe('down');
      expect(body.checks.counters?.status).toBe('up');
      expect(body.error.message).toContain(`${expectedDatabaseDriver} is down`);
    } finally {
      await running.close(1_000);
      await db.dispose();
    }
  });
});

import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;
let receiver: Server;
let receiverUrl: string;
const received: { headers: IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  api = await startApi('webhooks', { TOLLGATE_WEBHOOKS_ALLOW_PRIVATE: 'true' }, { only: 'api,worker' });
  ({ env } = api);
  expect((await runCli(['teams', 'create', 'Hook CLI', '--slug', 'hook-cli'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'hook-cli';
});

afterAll(async () => {
  await api?.dispose();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe(`tollgate webhooks (${expectedDatabaseDriver})`, () => {
  it('adds an endpoint, receives a signed key.rotated, lists deliveries, replays one and removes the endpoint', async () => {
    const added = await runCli(
      ['webhooks', 'add', `${receiverUrl}/hook`, '--event', 'key.rotated', '--description', 'inventory'],
      env,
    );
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^whsec_[A-Za-z0-9_-]{43}\n$/);
    expect(added.stderr).toMatch(/^Added the endpoint [0-9a-f-]{36} for key\.rotated at http:\/\/127\.0\.0\.1:/);
    const secret = added.stdout.trim();
    const endpointId = /endpoint ([0-9a-f-]{36})/.exec(added.stderr)?.[1] as string;

    const listed = await runCli(['webhooks', 'list'], env);
    expect(listed.stdout).toContain(`${endpointId}\t${receiverUrl}/hook\tkey.rotated\tenabled\tinventory`);
    expect(listed.stdout).not.toContain(secret);

    const key = await runCli(['keys', 'create', '--json'], env);
    const keyId = (JSON.parse(key.stdout) as { id: string }).id;
    expect((await runCli(['keys', 'rotate', keyId, '--grace', '0'], env)).code).toBe(0);
    await eventually(
      async () => received.length,
      (count) => count >= 1,
    );
    const first = received[0] as { headers: IncomingHttpHeaders; body: string };
    const [t, v1] = String(first.headers['tollgate-signature'])
      .split(',')
      .map((part) => part.split('=')[1]);
    expect(createHmac('sha256', secret).update(`${t}.${first.body}`).digest('hex')).toBe(v1);
    expect(JSON.parse(first.body)).toMatchObject({ type: 'key.rotated', data: { key: { id: keyId } } });

    const deliveries = await eventually(
      async () => JSON.parse((await runCli(['webhooks', 'deliveries', '--status', 'succeeded', '--json'], env)).stdout),
      (body: { deliveries: unknown[] }) => body.deliveries.length === 1,
    );
    const delivery = deliveries.deliveries[0] as { id: string; event_id: string };
    const table = await runCli(['webhooks', 'deliveries', '--endpoint', endpointId], env);
    expect(table.stdout).toContain(`${delivery.id}\tkey.rotated\tsucceeded\t1\t200\t`);

    const replayed = await runCli(['webhooks', 'replay', delivery.id], env);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
    await eventually(
      async () => received.length,
      (count) => count >= 2,
    );
    expect(received.map((request) => request.headers['tollgate-event-id'])).toEqual([
      delivery.event_id,
      delivery.event_id,
    ]);

    const withoutYes = await runCli(['webhooks', 'remove', endpointId], env);
    expect(withoutYes.code).toBe(2);
    expect(withoutYes.stderr).toContain('--yes');
    const removed = await runCli(['webhooks', 'remove', endpointId, '--yes', '--json'], env);
    expect(JSON.parse(removed.stdout)).toEqual({ id: endpointId, url: `${receiverUrl}/hook`, removed: true });
    expect((await runCli(['webhooks', 'list', '--json'], env)).stdout).toBe('{\n  "endpoints": []\n}\n');
  });

  it('exits 2 on an unknown event type and 1 with code: message on a URL the API refuses', async () => {
    const unknown = await runCli(['webhooks', 'add', `${receiverUrl}/x`, '--event', 'invoice.lost'], env);
    expect(unknown.code).toBe(2);
    const ftp = await runCli(['webhooks', 'add', 'ftp://example.com/x', '--event', 'invoice.paid'], env);
    expect(ftp.code).toBe(1);
    expect(ftp.stderr).toMatch(/^validation_failed: url: must be an http:\/\/ or https:\/\/ URL/);
    const json = await runCli(['webhooks', 'replay', '00000000-0000-4000-8000-000000000000', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).error.code).toBe('not_found');
  });
});

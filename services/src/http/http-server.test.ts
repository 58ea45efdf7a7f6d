import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import { listen, type RunningServer } from './http-server.js';

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close(100)));
});

function get(url: string): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    request(url, (response) => {
      let body = '';
      response.on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body, connection: response.headers.connection }),
      );
      response.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

describe('listen', () => {
  it('binds port 0 to a free port and reports its URL', async () => {
    const server = await listen((_req, res) => res.end('ok'), { host: '127.0.0.1', port: 0 });
    servers.push(server);
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect((await get(server.url)).body).toBe('ok');
  });

  it('names the setting when the port is taken', async () => {
    const first = await listen((_req, res) => res.end(), { host: '127.0.0.1', port: 0 });
    servers.push(first);
    const error = await listen((_req, res) => res.end(), {
      host: '127.0.0.1',
      port: first.port,
      portSetting: 'TOLLGATE_API_PORT',
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TollgateError);
    expect((error as TollgateError).code).toBe('listen_failed');
    expect((error as TollgateError).message).toContain('the port is already in use');
    expect((error as TollgateError).hint).toContain('TOLLGATE_API_PORT');
  });

  it('names TOLLGATE_HOST when the host is not of this machine', async () => {
    const error = await listen((_req, res) => res.end(), { host: 'no-such-host.invalid', port: 0 }).catch(
      (caught: unknown) => caught,
    );
    expect((error as TollgateError).code).toBe('listen_failed');
    expect((error as TollgateError).hint).toContain('TOLLGATE_HOST');
  });

  it('lets in-flight requests finish on close, then refuses new connections', async () => {
    const server = await listen(
      (_req, res) => {
        setTimeout(() => res.end('finished'), 300);
      },
      { host: '127.0.0.1', port: 0 },
    );
    const inFlight = get(server.url);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = server.close(5_000);
    const answer = await inFlight;
    expect(answer).toEqual({ status: 200, body: 'finished', connection: 'close' });
    await closed;
    await expect(get(server.url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('cuts requests still running when the drain timeout ends', async () => {
    const server = await listen(() => undefined, { host: '127.0.0.1', port: 0 });
    const hanging = get(server.url).catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await server.close(200);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await hanging).toBeInstanceOf(Error);
  });

  it('closes idle keep-alive connections at once instead of waiting for their timeout', async () => {
    const server = await listen((_req, res) => res.end('ok'), { host: '127.0.0.1', port: 0 });
    const response = await fetch(server.url);
    expect(await response.text()).toBe('ok');
    const started = performance.now();
    await server.close(10_000);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

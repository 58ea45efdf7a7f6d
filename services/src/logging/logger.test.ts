import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from './logger.js';

function captureLines(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('never writes credential headers or secret fields', () => {
    const { stream, lines } = captureLines();
    const logger = createLogger({ level: 'info', destination: stream });
    logger.info(
      {
        req: { headers: { authorization: 'Bearer tg_live_abc_s3cret', 'x-api-key': 'tg_live_k', cookie: 'sid=1' } },
        user: { password: 'hunter2', token: 'refresh-123' },
      },
      'request',
    );
    const text = JSON.stringify(lines());
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('tg_live_k');
    expect(text).not.toContain('sid=1');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('refresh-123');
    expect(lines()[0]).toMatchObject({ level: 'info', msg: 'request' });
  });
});

describe('redactUrl', () => {
  it('blanks credential-shaped query values and keeps the rest', () => {
    expect(redactUrl('/v1/x?api_key=abc&page=2&access_token=t')).toBe(
      '/v1/x?api_key=[redacted]&page=2&access_token=[redacted]',
    );
    expect(redactUrl('/v1/oauth/callback?code=xyz&state=s')).toBe('/v1/oauth/callback?code=[redacted]&state=s');
    // Encoded names and repeated parameters are caught too.
    expect(redactUrl('/x?api%5Fkey=a&token=1&token=2')).toBe(
      '/x?api%5Fkey=[redacted]&token=[redacted]&token=[redacted]',
    );
  });

  it('leaves URLs without secrets untouched', () => {
    expect(redactUrl('/v1/apis?limit=10')).toBe('/v1/apis?limit=10');
    expect(redactUrl('/healthz')).toBe('/healthz');
  });
});

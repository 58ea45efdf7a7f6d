import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from '../config/config.js';

export type { Logger } from 'pino';

const censor = '[redacted]';

/**
 * Paths pino blanks out before a line is written. Request logs carry headers, so every header that
 * can hold a credential is listed, along with credential-shaped fields of any logged object.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["stripe-signature"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.api_key',
];

export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; stderr by default so stdout stays for command results. */
  destination?: DestinationStream;
  name?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.name ?? 'tollgate' },
      redact: { paths: redactedPaths, censor },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

const sensitiveQueryParameter = /token|key|secret|password|passwd|signature|code|session|auth/i;

/** The request target with credential-shaped query values blanked, for logs. */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;
  let changed = false;
  const parts = url
    .slice(queryStart + 1)
    .split('&')
    .map((part) => {
      const separator = part.indexOf('=');
      const rawName = separator === -1 ? part : part.slice(0, separator);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // A malformed escape: judge the raw name.
      }
      if (separator === -1 || !sensitiveQueryParameter.test(name)) return part;
      changed = true;
      return `${rawName}=${censor}`;
    });
  return changed ? `${url.slice(0, queryStart)}?${parts.join('&')}` : url;
}

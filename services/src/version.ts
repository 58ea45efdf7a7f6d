import { readFileSync } from 'node:fs';

/** The version of Tollgate, from services/package.json (the same path from src/ and dist/). */
export const tollgateVersion: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './cli-error.js';

export const defaultApiUrl = 'http://127.0.0.1:4000';

export interface Profile {
  api_url?: string;
  /** The team commands act on when --team is not given (set by `tollgate teams switch`). */
  team?: string;
}

/** `TOLLGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tollgate`, else `~/.config/tollgate`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TOLLGATE_CONFIG_DIR) return env.TOLLGATE_CONFIG_DIR;
  const xdg = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(xdg, 'tollgate');
}

export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'config.json');
}

/**
 * Reads a named profile from `config.json` (`{"profiles":{"<name>":{"api_url":...}}}`). A missing
 * file means every profile is empty; naming a profile that the file lacks is an error, except the
 * default one.
 */
export async function loadProfile(name: string, env: NodeJS.ProcessEnv = process.env): Promise<Profile> {
  const file = configFile(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (name === 'default') return {};
    throw new CliError('profile_not_found', `no profile "${name}": ${file} does not exist`, {
      hint: 'drop --profile to use the default, or create the file',
    });
  }
  let parsed: { profiles?: Record<string, Profile> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (error) {
    throw new CliError('config_file_invalid', `${file} is not valid JSON: ${(error as Error).message}`, {
      hint: 'fix or delete the file',
    });
  }
  const profile = parsed.profiles?.[name];
  if (profile) return profile;
  if (name === 'default') return {};
  const known = Object.keys(parsed.profiles ?? {});
  throw new CliError('profile_not_found', `no profile "${name}" in ${file}`, {
    hint: known.length > 0 ? `known profiles: ${known.join(', ')}` : 'add it under "profiles" in that file',
  });
}

/** Changes fields of one profile in config.json, keeping everything else in the file. */
export async function updateProfile(
  name: string,
  change: Partial<Profile>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const file = configFile(env);
  let parsed: { profiles?: Record<string, Profile> } = {};
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as typeof parsed;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CliError('config_file_invalid', `${file} cannot be read: ${(error as Error).message}`, {
        hint: 'fix or delete the file',
      });
    }
  }
  parsed.profiles ??= {};
  parsed.profiles[name] = { ...parsed.profiles[name], ...change };
  await mkdir(configDir(env), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(parsed, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
  return file;
}

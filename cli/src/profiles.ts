import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './cli-error.js';

export const defaultApiUrl = 'http://127.0.0.1:4000';

export interface Profile {
  api_url?: string;
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

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError } from './cli-error.js';
import { configDir } from './profiles.js';

/** What the CLI keeps for one profile after logging in. */
export interface StoredCredentials {
  api_url: string;
  user: { id: string; email: string };
  access_token: string;
  /** ISO time. */
  access_token_expires_at: string;
  refresh_token: string;
  session_id: string;
}

interface CredentialsFile {
  profiles: Record<string, StoredCredentials>;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'credentials.json');
}

async function readAll(path: string): Promise<CredentialsFile> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<CredentialsFile>;
    return { profiles: parsed.profiles ?? {} };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw new CliError('config_file_invalid', `${path} cannot be read: ${(error as Error).message}`, {
      hint: 'delete it and log in again',
    });
  }
}

/** Writes through a temporary file and a rename, so a crash never leaves half a file; mode 0600. */
async function writeAll(path: string, content: CredentialsFile): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(content, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

export async function loadCredentials(
  profile: string,
  env?: NodeJS.ProcessEnv,
): Promise<StoredCredentials | undefined> {
  return (await readAll(credentialsPath(env))).profiles[profile];
}

/** Replaces (or with `undefined` removes) one profile's entry; the caller must hold the lock. */
export async function writeProfileCredentials(
  profile: string,
  credentials: StoredCredentials | undefined,
  env?: NodeJS.ProcessEnv,
): Promise<{ path: string; existed: boolean }> {
  const path = credentialsPath(env);
  const all = await readAll(path);
  const existed = all.profiles[profile] !== undefined;
  if (credentials) all.profiles[profile] = credentials;
  else delete all.profiles[profile];
  if (credentials || existed) await writeAll(path, all);
  return { path, existed };
}

/** Stores a profile's session, under the lock so a concurrent refresh of another profile is kept. */
export async function saveCredentials(
  profile: string,
  credentials: StoredCredentials,
  env?: NodeJS.ProcessEnv,
): Promise<string> {
  return withCredentialsLock(async () => (await writeProfileCredentials(profile, credentials, env)).path, env);
}

export async function deleteCredentials(profile: string, env?: NodeJS.ProcessEnv): Promise<boolean> {
  return withCredentialsLock(async () => (await writeProfileCredentials(profile, undefined, env)).existed, env);
}

/**
 * Runs `fn` while holding a lock file next to the credentials. Refresh tokens are single use: two
 * CLI processes refreshing the same one at once would look like token theft and end the session.
 */
export async function withCredentialsLock<T>(fn: () => Promise<T>, env?: NodeJS.ProcessEnv): Promise<T> {
  const lockPath = `${credentialsPath(env)}.lock`;
  await mkdir(join(lockPath, '..'), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than 30 s belongs to a process that died holding it.
      const age = await stat(lockPath).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age > 30_000) await rm(lockPath, { force: true });
      else if (Date.now() > deadline) {
        throw new CliError('credentials_locked', `another tollgate command holds ${lockPath}`, {
          hint: 'wait for it to finish, or delete the file if no tollgate command is running',
        });
      } else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabaseConfig, type StripeServer, startStripeServer } from '@tollgate/services/testing';
import { cliEnv, spawnStart, stop } from './run-cli.js';

export interface RunningApi {
  /** What the CLI runs with: its own config and mail dirs, the test database, the API's port. */
  env: NodeJS.ProcessEnv;
  /** The temporary dir: `config` and `mail` are in it, and a test may write files of its own there. */
  dir: string;
  /** Where `tollgate start` serves the API. */
  apiUrl: string;
  /** Stops `tollgate start`, then removes the database and the temporary dir (and stops Stripe). */
  dispose(): Promise<void>;
}

/**
 * `tollgate start --only api` (or the processes `only` names, e.g. `api,worker`) on a fresh test
 * database (PGlite, or TEST_DATABASE_URL), configured in a temporary dir named after `name`;
 * `extraEnv` adds to its environment.
 */
export async function startApi(
  name: string,
  extraEnv: Record<string, string> = {},
  options: { only?: string } = {},
): Promise<RunningApi> {
  const dir = await mkdtemp(join(tmpdir(), `tollgate-${name}-cli-`));
  const database = await createTestDatabaseConfig();
  const env = cliEnv({
    TOLLGATE_CONFIG_DIR: join(dir, 'config'),
    TOLLGATE_MAIL_DIR: join(dir, 'mail'),
    TOLLGATE_API_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_DATA_DIR: database.value.driver === 'pglite' ? database.value.dataDir : join(dir, 'data'),
    DATABASE_URL: database.value.driver === 'postgres' ? database.value.url : undefined,
    ...extraEnv,
  });
  const running = spawnStart(['--only', options.only ?? 'api'], env);
  const dispose = async () => {
    await stop(running);
    await database.dispose();
    await rm(dir, { recursive: true, force: true });
  };
  let apiUrl: string;
  try {
    apiUrl = (await running.ready).api_url ?? '';
  } catch (error) {
    await dispose();
    throw error;
  }
  return { env, dir, apiUrl, dispose };
}

export interface RunningApiWithStripe extends RunningApi {
  stripe: StripeServer;
}

/** `startApi` with Stripe configured and aimed at a local Stripe server that knows the webhook secret. */
export async function startApiWithStripe(name: string): Promise<RunningApiWithStripe> {
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const stripe = await startStripeServer({ webhookSecret });
  let api: RunningApi;
  try {
    api = await startApi(name, {
      STRIPE_SECRET_KEY: stripe.apiKey,
      STRIPE_WEBHOOK_SECRET: webhookSecret,
      STRIPE_API_BASE: stripe.url,
    });
  } catch (error) {
    await stripe.close();
    throw error;
  }
  return {
    ...api,
    stripe,
    async dispose() {
      await api.dispose();
      await stripe.close();
    },
  };
}

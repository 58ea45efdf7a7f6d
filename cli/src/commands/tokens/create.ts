import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface CreatedToken {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  token: string;
}

/** `90d` -> 90, `never` -> null; what POST /v1/me/tokens takes as `expires_in_days`. */
function expiresInDays(value: string): number | null {
  if (value.trim().toLowerCase() === 'never') return null;
  const days = /^(\d{1,3})d$/i.exec(value.trim())?.[1];
  const count = days === undefined ? Number.NaN : Number(days);
  if (!Number.isInteger(count) || count < 1 || count > 365) {
    throw new CliError(
      'usage_error',
      `--expires-in must be a number of days from 1d to 365d, or never (got "${value}")`,
      {
        hint: 'e.g. --expires-in 30d',
        exitCode: exitCodes.usage,
      },
    );
  }
  return count;
}

export default class TokensCreate extends TollgateCommand<typeof TokensCreate> {
  static override summary = 'Create a personal access token, for CI and scripts (printed once).';

  static override description =
    'Prints the token (tgpat_...) alone on standard output, so TOKEN=$(tollgate tokens create --name ci) keeps it, and what to do with it on standard error. It is shown this once: Tollgate keeps only its SHA-256. Use it as TOLLGATE_TOKEN, or send it as Authorization: Bearer. It acts as you, but cannot create tokens, delete the account or change its password, email or second factors. Needs a session: run it logged in, not with TOLLGATE_TOKEN. At most 50 live tokens per account.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --name ci',
    'TOKEN=$(<%= config.bin %> <%= command.id %> --name deploy --expires-in 30d)',
    '<%= config.bin %> <%= command.id %> --name backup-job --expires-in never --json',
  ];

  static override flags = {
    name: Flags.string({
      description: 'What the token is for, to recognise it in `tollgate tokens list` (1 to 100 characters)',
      env: 'TOLLGATE_TOKEN_NAME',
    }),
    'expires-in': Flags.string({
      description: 'Lifetime: a number of days from 1d to 365d, or never',
      env: 'TOLLGATE_TOKEN_EXPIRES_IN',
      default: '90d',
    }),
  };

  async run(): Promise<void> {
    const { name } = this.flags;
    if (!name) {
      throw new CliError('usage_error', 'a token needs a name, to recognise it later', {
        hint: 'pass --name <what it is for>, e.g. --name ci',
        exitCode: exitCodes.usage,
      });
    }
    const days = expiresInDays(this.flags['expires-in']);
    const created = (await this.call('POST', '/v1/me/tokens', {
      name,
      expires_in_days: days,
    })) as CreatedToken;
    if (this.jsonMode) {
      this.outJson(created);
      return;
    }
    this.out(created.token);
    const expiry = created.expires_at ? `expires ${created.expires_at}` : 'never expires';
    this.note(
      `Created the personal access token "${created.name}" (${created.prefix}..., id ${created.id}; ${expiry}).`,
    );
    this.note(
      this.style(
        'dim',
        'It is shown this once: store it now (for CI, as the secret TOLLGATE_TOKEN). Revoke it with `tollgate tokens revoke <id>`.',
        'stderr',
      ),
    );
  }
}

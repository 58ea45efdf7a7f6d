import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';
import { CliError, exitCodes } from '../../../cli-error.js';

interface SsoSettings {
  team_id: string;
  issuer: string;
  client_id: string;
  email_domains: string[];
  default_role: string;
  updated_at: string;
}

export default class TeamsSsoSet extends TollgateCommand<typeof TeamsSsoSet> {
  static override summary = "Set the team's single sign-on: any OpenID Connect provider (needs team:manage).";

  static override description =
    'Register <public URL>/v1/auth/oauth/callback as the redirect URI at your provider (Okta, Entra ID, Google Workspace, Keycloak, ...). The client secret is read from standard input (--client-secret-stdin) or TOLLGATE_SSO_CLIENT_SECRET, never from a flag; leave both out to keep the stored one. People then log in with `tollgate login --provider sso --team <slug>` and join the team with --default-role.';

  static override examples = [
    'printf %s "$SECRET" | <%= config.bin %> <%= command.id %> --issuer https://acme.okta.com --client-id 0oa1b2c3 --client-secret-stdin --domain acme.com',
  ];

  static override flags = {
    team: Flags.string({ description: 'Team slug or id (default: the current team)' }),
    issuer: Flags.string({ description: "The provider's issuer URL (https)", required: true }),
    'client-id': Flags.string({ description: 'Client id registered at the provider', required: true }),
    'client-secret-stdin': Flags.boolean({ description: 'Read the client secret from standard input' }),
    domain: Flags.string({
      description: 'Email domain the provider may sign in (repeatable); none: any',
      multiple: true,
    }),
    'default-role': Flags.string({
      description: 'Role of people who join through SSO',
      options: ['admin', 'developer', 'user'],
      default: 'user',
    }),
  };

  async run(): Promise<void> {
    const { readStdin } = await import('../../../prompt.js');
    let secret = process.env.TOLLGATE_SSO_CLIENT_SECRET || undefined;
    if (this.flags['client-secret-stdin']) secret = (await readStdin()).trim();
    if (secret === '') {
      throw new CliError('usage_error', 'the client secret on standard input is empty', { exitCode: exitCodes.usage });
    }
    const team = await this.currentTeam(this.flags.team);
    const saved = (await this.call('PUT', `/v1/teams/${encodeURIComponent(team)}/sso`, {
      issuer: this.flags.issuer,
      client_id: this.flags['client-id'],
      ...(secret ? { client_secret: secret } : {}),
      email_domains: this.flags.domain ?? [],
      default_role: this.flags['default-role'],
    })) as SsoSettings;
    if (this.jsonMode) {
      this.outJson(saved);
      return;
    }
    this.out(`Single sign-on set for ${team}: ${saved.issuer} (client ${saved.client_id}).`);
    this.note(
      `Members log in with: tollgate login --provider sso --team ${team}${saved.email_domains.length ? ` (emails @${saved.email_domains.join(', @')})` : ''}`,
    );
  }
}

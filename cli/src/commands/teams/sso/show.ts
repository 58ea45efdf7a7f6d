import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';

export default class TeamsSsoShow extends TollgateCommand<typeof TeamsSsoShow> {
  static override summary = "Show the team's single sign-on settings (never the secret).";

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = {
    team: Flags.string({ description: 'Team slug or id (default: the current team)' }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const sso = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/sso`)) as {
      issuer: string;
      client_id: string;
      email_domains: string[];
      default_role: string;
      updated_at: string;
    };
    if (this.jsonMode) {
      this.outJson(sso);
      return;
    }
    this.out(
      [
        `issuer        ${sso.issuer}`,
        `client id     ${sso.client_id}`,
        `client secret (set, sealed)`,
        `domains       ${sso.email_domains.length ? sso.email_domains.join(', ') : 'any'}`,
        `default role  ${sso.default_role}`,
        `updated       ${sso.updated_at}`,
      ].join('\n'),
    );
  }
}

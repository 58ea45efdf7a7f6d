import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';
import { confirmAction, requireConfirmationMeans } from '../../confirm-action.js';
import { teamFlag } from '../../team-flag.js';

interface Team {
  id: string;
  slug: string;
  name: string;
}

/** What to do next, for the refusals of DELETE /v1/teams/:team/members/:user when leaving. */
const leaveHints: Record<string, string> = {
  owner_cannot_leave: 'make another member the owner first: tollgate teams transfer <member>',
  last_admin: 'make another member an admin first: tollgate teams role <member> admin',
};

export default class TeamsLeave extends TollgateCommand<typeof TeamsLeave> {
  static override summary = 'Leave the team (any member may; the owner must transfer it first).';

  static override description =
    "Removes your own membership (DELETE /v1/teams/{team}/members/{your id}). The team's owner cannot leave, and neither can its last admin. When the team was the profile's current team, the profile has no current team afterwards. Asks for confirmation on a terminal; without a terminal, pass --yes.";

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --yes',
  ];

  static override flags = {
    team: teamFlag,
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
  };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'leaving the team' });
    const chosen = await this.currentTeam(this.flags.team);
    const me = (await this.call('GET', '/v1/me')) as { id: string; email: string };
    const team = (await this.call('GET', `/v1/teams/${encodeURIComponent(chosen)}`)) as Team;
    await confirmAction({
      yes: this.flags.yes,
      question: `Leave ${team.name} (${team.slug})? Getting back in takes a new invitation.`,
    });
    try {
      await this.call('DELETE', `/v1/teams/${encodeURIComponent(team.id)}/members/${encodeURIComponent(me.id)}`);
    } catch (error) {
      const hint = error instanceof CliError ? leaveHints[error.code] : undefined;
      if (error instanceof CliError && hint) throw new CliError(error.code, error.message, { hint });
      throw error;
    }
    const { loadProfile, updateProfile } = await import('../../profiles.js');
    // The membership is gone already: a config file that cannot be read must not turn that into a failure.
    const current = (await loadProfile(this.flags.profile).catch(() => ({}) as { team?: string })).team;
    const wasCurrent = current === team.slug || current === team.id;
    if (wasCurrent) await updateProfile(this.flags.profile, { team: undefined });
    if (this.jsonMode) {
      this.outJson({ left: team, current_team_cleared: wasCurrent });
      return;
    }
    this.out(`Left ${team.name} (${team.slug}).`);
    if (wasCurrent) {
      this.note(
        this.style('dim', 'It was your current team; choose another with `tollgate teams switch <slug>`.', 'stderr'),
      );
    }
  }
}

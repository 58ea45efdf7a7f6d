import { Flags } from '@oclif/core';

/** `--team`, shared by the commands that act on one team. */
export const teamFlag = Flags.string({
  description: "Team slug or id [default: the profile's current team, see `tollgate teams switch`]",
  env: 'TOLLGATE_TEAM',
});

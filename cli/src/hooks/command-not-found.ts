import type { Hook } from '@oclif/core';
import { exitCodes } from '../cli-error.js';

/** An unknown command is a usage error: `usage_error: ...`, a hint, exit 2 (oclif's default is a bare message). */
const hook: Hook.CommandNotFound = async function (options) {
  const words = options.id.replaceAll(':', ' ');
  const known = options.config.commandIDs.map((id) => id.replaceAll(':', ' ')).sort();
  const json = options.argv?.includes('--json') ?? false;
  const message = `"${words}" is not a tollgate command`;
  const hint = `commands: ${known.join(', ')}; see tollgate --help`;
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: 'usage_error', message, hint } }, null, 2)}\n`);
  else process.stderr.write(`usage_error: ${message}\nhint: ${hint}\n`);
  this.exit(exitCodes.usage);
};

export default hook;

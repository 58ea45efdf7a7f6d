import { CliError, exitCodes } from './cli-error.js';
import { canPrompt } from './read-password.js';

/**
 * For a change that is hard to undo: without --yes, a terminal must be there to ask on. Checked
 * before anything is sent, so a script that forgot --yes fails at once and changes nothing.
 */
export function requireConfirmationMeans(options: { yes: boolean; action: string }): void {
  if (options.yes || canPrompt()) return;
  throw new CliError('usage_error', `no terminal to confirm ${options.action}`, {
    hint: 'pass --yes to go ahead without being asked',
    exitCode: exitCodes.usage,
  });
}

/** Asks `question [y/N]` on the terminal, unless --yes; anything but y or yes cancels (exit 1). */
export async function confirmAction(options: { yes: boolean; question: string }): Promise<void> {
  if (options.yes) return;
  const { ask } = await import('./prompt.js');
  const answer = (await ask(`${options.question} [y/N] `)).trim().toLowerCase();
  if (answer !== 'y' && answer !== 'yes') {
    throw new CliError('cancelled', 'not confirmed; nothing was changed');
  }
}

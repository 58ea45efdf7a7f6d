import { CliError, exitCodes } from './cli-error.js';

/** stdin and stderr both terminals: the condition for asking anything (prompts are written on stderr). */
export const canPrompt = (): boolean => process.stdin.isTTY === true && process.stderr.isTTY === true;

/**
 * A password the way every command reads one, never from a flag (it would stay in the shell history
 * and in `ps`): standard input with `--password-stdin`, else TOLLGATE_PASSWORD; when that gives
 * nothing, asked without echo on a terminal (twice when `again` is given), else a usage error naming
 * the two ways to pass it.
 */
export async function readPassword(options: {
  /** --password-stdin was given. */
  stdin: boolean;
  prompt: string;
  /** The second prompt, for a new password typed blind. */
  again?: string;
  /** How the usage error names it: "the password" unless told. */
  what?: string;
}): Promise<string> {
  const { ask, readStdin } = await import('./prompt.js');
  const given = options.stdin ? await readStdin() : process.env.TOLLGATE_PASSWORD;
  if (given) return given;
  if (!canPrompt()) {
    throw new CliError('usage_error', `no terminal to ask for ${options.what ?? 'the password'}`, {
      hint: 'pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD',
      exitCode: exitCodes.usage,
    });
  }
  const password = await ask(options.prompt, { hidden: true });
  if (options.again !== undefined && (await ask(options.again, { hidden: true })) !== password) {
    throw new CliError('passwords_differ', 'the two passwords differ', { hint: 'run the command again' });
  }
  return password;
}

/** Exit codes of every command (docs/cli.md): 0 ok, 1 error, 2 usage, 4 not logged in. */
export const exitCodes = { ok: 0, error: 1, usage: 2, notLoggedIn: 4 } as const;

/** A problem to show the user as `code: message` and a hint, then exit with `exitCode`. */
export class CliError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, options: { hint?: string; exitCode?: number } = {}) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? exitCodes.error;
  }
}

import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import type { Session } from './api-client.js';
import { CliError, exitCodes } from './cli-error.js';
import { colorEnabled, paint, type Style } from './output/color.js';
import { defaultApiUrl, loadProfile } from './profiles.js';

export type InferredFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof TollgateCommand)['baseFlags'] & T['flags']
>;
export type InferredArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  hint?: unknown;
}

/**
 * What every command shares: the global flags, stdout for results and stderr for everything else,
 * one JSON document with --json, colour rules, and errors printed as `code: message` plus a hint with
 * the exit codes of docs/cli.md.
 */
export abstract class TollgateCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    json: Flags.boolean({
      description: 'Print one JSON document on stdout and nothing else there.',
      env: 'TOLLGATE_JSON',
      helpGroup: 'GLOBAL',
    }),
    profile: Flags.string({
      description: 'Profile from the config file to use.',
      env: 'TOLLGATE_PROFILE',
      default: 'default',
      helpGroup: 'GLOBAL',
    }),
    'api-url': Flags.string({
      description: `Control-plane API URL [default: the profile's api_url, else ${defaultApiUrl}]`,
      env: 'TOLLGATE_API_URL',
      helpGroup: 'GLOBAL',
    }),
    color: Flags.boolean({
      description: 'Colour the output (off anyway with NO_COLOR, --json, or when not a terminal).',
      env: 'TOLLGATE_COLOR',
      allowNo: true,
      default: true,
      helpGroup: 'GLOBAL',
    }),
  };

  protected flags!: InferredFlags<T>;
  protected args!: InferredArgs<T>;

  override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof TollgateCommand).baseFlags,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as InferredFlags<T>;
    this.args = args as InferredArgs<T>;
  }

  protected get jsonMode(): boolean {
    // Flags are not parsed yet when parsing itself fails, so look at argv and the environment too.
    if (this.flags) return this.flags.json;
    return this.argv.includes('--json') || /^(1|true|yes)$/i.test(process.env.TOLLGATE_JSON ?? '');
  }

  /** Styling for stdout (`stream: 'stdout'`) or stderr. */
  protected style(style: Style, text: string, stream: 'stdout' | 'stderr' = 'stdout'): string {
    const enabled = colorEnabled({
      color: this.flags?.color ?? !this.argv.includes('--no-color'),
      json: this.jsonMode,
      stream: stream === 'stdout' ? process.stdout : process.stderr,
    });
    return paint(enabled, style, text);
  }

  /** A result line for people (suppressed in --json mode). */
  protected out(text: string): void {
    if (!this.jsonMode) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Progress, warnings and hints: stderr, so stdout stays parseable. */
  protected note(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  /** The one JSON document of --json mode. */
  protected outJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  protected async apiUrl(): Promise<string> {
    const url = this.flags['api-url'] ?? (await loadProfile(this.flags.profile)).api_url ?? defaultApiUrl;
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
    } catch {
      throw new CliError('usage_error', `--api-url must be an http:// or https:// URL (got "${url}")`, {
        exitCode: exitCodes.usage,
      });
    }
    return url.replace(/\/+$/, '');
  }

  /**
   * The signed-in session: --api-url / TOLLGATE_API_URL when given, else the URL the profile logged
   * in to. Exits 4 (`not_logged_in`) without credentials.
   */
  protected async session(options: { forceRefresh?: boolean } = {}): Promise<Session> {
    const { signedIn } = await import('./api-client.js');
    const fallbackApiUrl = await this.apiUrl();
    return signedIn({
      profile: this.flags.profile,
      explicitApiUrl: this.flags['api-url'] ? fallbackApiUrl : undefined,
      fallbackApiUrl,
      ...options,
    });
  }

  /** The team a team command acts on: --team (TOLLGATE_TEAM), else the profile's current team. */
  protected async currentTeam(flag: string | undefined): Promise<string> {
    const team = flag ?? (await loadProfile(this.flags.profile)).team;
    if (!team) {
      throw new CliError('no_team', 'no team chosen', {
        hint: 'pass --team <slug>, or run `tollgate teams switch <slug>`',
        exitCode: exitCodes.usage,
      });
    }
    return team;
  }

  /** A signed-in API call; answers with the parsed JSON body. */
  protected async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const { authedRequest } = await import('./api-client.js');
    return authedRequest(await this.session(), this.flags.profile, method, path, body, () =>
      this.session({ forceRefresh: true }),
    );
  }

  protected override async catch(error: Error): Promise<never> {
    const flagValueError = /^Parsing --([\w-]+) \n\t/;
    if (error instanceof Errors.ExitError) throw error;
    let code = 'internal_error';
    let message = error.message;
    let hint: string | undefined = 'this looks like a bug in Tollgate; run again with DEBUG=* for details';
    let exitCode: number = exitCodes.error;
    if (error instanceof CliError) {
      ({ code, hint, exitCode } = error);
    } else if (error.name === 'PromptCancelled') {
      code = 'cancelled';
      message = 'cancelled at the prompt';
      hint = undefined;
    } else if ((error instanceof Errors.CLIError && 'parse' in error) || flagValueError.test(error.message)) {
      // oclif's own parse errors, and a flag's value its parser refused (`--limit abc`, `--version 0`),
      // which oclif rethrows as a plain Error "Parsing --flag \n\t<why>".
      code = 'usage_error';
      message = error.message
        .replace(/\nSee more help with --help$/, '')
        .replace(flagValueError, (_match, flag: string) => `--${flag}: `);
      hint = `see tollgate ${this.id?.replaceAll(':', ' ') ?? ''} --help`.replace(/ +/g, ' ');
      exitCode = exitCodes.usage;
    } else if (error.name === 'TollgateError' && typeof (error as ErrorLike).code === 'string') {
      // An expected failure from the services, with a stable code and maybe a hint. Matched by name:
      // importing the services here would slow every command's start-up.
      code = (error as ErrorLike).code as string;
      hint = typeof (error as ErrorLike).hint === 'string' ? ((error as ErrorLike).hint as string) : undefined;
    }
    if (code === 'internal_error' && process.env.DEBUG) this.note(error.stack ?? String(error));
    if (this.jsonMode) {
      this.outJson({ error: { code, message, ...(hint ? { hint } : {}) } });
    } else {
      this.note(`${this.style('red', code, 'stderr')}: ${message}`);
      if (hint) this.note(this.style('dim', `hint: ${hint}`, 'stderr'));
    }
    this.exit(exitCode);
  }
}

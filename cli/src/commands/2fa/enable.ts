import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';

interface Enrolment {
  secret: string;
  otpauth_uri: string;
}

/** `totpQrForTerminal` from the services package, when this build exports it. */
type QrRenderer = (uri: string, options?: { ansi?: boolean }) => Promise<string>;

/** Tries at the prompt before giving up; each wrong one only costs a new code from the app. */
const promptTries = 3;

export default class TwoFactorEnable extends TollgateCommand<typeof TwoFactorEnable> {
  static override summary = 'Turn on two-factor authentication with an authenticator app.';

  static override description =
    'On a terminal: shows a QR code and the secret for the app, asks for a code from it, and prints your recovery codes (shown this once). Without a terminal it takes two runs: the first prints the secret and its otpauth:// URI; the second, with --code and a code from the app, turns two-factor authentication on and prints the recovery codes.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json    # no terminal: prints the secret',
    '<%= config.bin %> <%= command.id %> --code 123456',
  ];

  static override flags = {
    code: Flags.string({
      description: 'A code from the authenticator app, confirming the setup a previous run started',
      env: 'TOLLGATE_2FA_CODE',
    }),
  };

  async run(): Promise<void> {
    if (this.flags.code !== undefined) {
      await this.confirm(this.flags.code);
      return;
    }
    const enrolment = (await this.call('POST', '/v1/me/2fa/totp')) as Enrolment;
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;
    if (!tty) {
      // Nobody to ask for a code: the secret is the result, and a second run confirms it.
      if (this.jsonMode) {
        this.outJson({ totp: 'pending', secret: enrolment.secret, otpauth_uri: enrolment.otpauth_uri });
      } else {
        this.out(`secret\t${enrolment.secret}\notpauth_uri\t${enrolment.otpauth_uri}`);
      }
      this.note(
        'Add the secret to your authenticator app, then turn two-factor authentication on with: tollgate 2fa enable --code <code from the app>',
      );
      return;
    }

    const qr = await this.renderQr(enrolment.otpauth_uri);
    this.note('Scan this QR code with your authenticator app (or type in the secret below):');
    if (qr) this.note(qr.trimEnd());
    this.note(`Secret: ${enrolment.secret}`);
    this.note(this.style('dim', enrolment.otpauth_uri, 'stderr'));

    const { ask } = await import('../../prompt.js');
    for (let attempt = 1; ; attempt++) {
      const code = (await ask('Code from the app: ')).trim();
      if (code === '') continue;
      try {
        await this.confirm(code);
        return;
      } catch (error) {
        // Only a code that does not match is worth another try; anything else is final.
        if (!(error instanceof CliError) || error.code !== 'validation_failed' || attempt >= promptTries) throw error;
        this.note(`${this.style('red', error.code, 'stderr')}: ${error.message}; try the next code`);
      }
    }
  }

  private async confirm(code: string): Promise<void> {
    const { recovery_codes } = (await this.call('POST', '/v1/me/2fa/totp/confirm', { code })) as {
      recovery_codes: string[];
    };
    if (this.jsonMode) {
      this.outJson({ totp: 'enabled', recovery_codes });
      return;
    }
    this.note('Two-factor authentication is on. Your recovery codes, each good for one login without the app:');
    this.out(recovery_codes.join('\n'));
    this.note(this.style('yellow', 'Store them somewhere safe now: they are not shown again.', 'stderr'));
  }

  /** The QR code for a terminal, or undefined when this build of the services cannot draw one. */
  private async renderQr(uri: string): Promise<string | undefined> {
    // Loaded here only: the services package is large, and only this command draws QR codes.
    const services = (await import('@tollgate/services')) as unknown as { totpQrForTerminal?: QrRenderer };
    if (typeof services.totpQrForTerminal !== 'function') return undefined;
    const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
    return services.totpQrForTerminal(uri, { ansi: this.flags.color && !noColor });
  }
}

import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface Enrolment {
  secret: string;
  otpauth_uri: string;
}

/** `totpQrForTerminal` from the services package, when this build exports it. */
type QrRenderer = (uri: string, options?: { ansi?: boolean }) => Promise<string>;

interface SmsEnrolment {
  sms: 'pending';
  phone: string;
  expires_at: string;
}

interface TwoFactorStatus {
  sms: 'off' | 'pending' | 'enabled';
  sms_phone: string | null;
}

/** Tries at the prompt before giving up; each wrong one only costs a new code from the app. */
const promptTries = 3;

export default class TwoFactorEnable extends TollgateCommand<typeof TwoFactorEnable> {
  static override summary = 'Turn on two-factor authentication with an authenticator app or SMS codes.';

  static override description =
    'With an authenticator app (the default, --method totp), on a terminal: shows a QR code and the secret for the app, asks for a code from it, and prints your recovery codes (shown this once). Without a terminal it takes two runs: the first prints the secret and its otpauth:// URI; the second, with --code and a code from the app, turns two-factor authentication on and prints the recovery codes.\n\nWith SMS codes (--method sms, implied by --phone): the number, in international format, is sent a 6-digit code. On a terminal the code is asked for; without one, a second run with --method sms --code turns SMS codes on. The number is stored encrypted and shown partly hidden (+1 *** *** 4567).';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json    # no terminal: prints the secret',
    '<%= config.bin %> <%= command.id %> --code 123456',
    '<%= config.bin %> <%= command.id %> --method sms --phone +15551234567',
    '<%= config.bin %> <%= command.id %> --method sms --code 123456    # no terminal: the second run',
  ];

  static override flags = {
    method: Flags.string({
      description: 'The second factor: totp (an authenticator app) or sms (codes by text message)',
      options: ['totp', 'sms'],
      env: 'TOLLGATE_2FA_METHOD',
    }),
    phone: Flags.string({
      description: 'With --method sms: your mobile number in international format, like +15551234567',
      env: 'TOLLGATE_2FA_PHONE',
    }),
    code: Flags.string({
      description:
        'A code from the authenticator app (or the text message), confirming the setup a previous run started',
      env: 'TOLLGATE_2FA_CODE',
    }),
  };

  async run(): Promise<void> {
    const method = this.flags.method ?? (this.flags.phone === undefined ? 'totp' : 'sms');
    if (method === 'sms') {
      await this.enableSms();
      return;
    }
    if (this.flags.phone !== undefined) {
      throw new CliError('usage_error', '--phone is for SMS codes, not for an authenticator app', {
        hint: 'use --method sms --phone <number>, or leave --phone out',
        exitCode: exitCodes.usage,
      });
    }
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

  /** Adds a phone number: a code is texted to it, then confirmed here or by a second run with --code. */
  private async enableSms(): Promise<void> {
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;
    let phone = this.flags.phone;
    if (phone !== undefined && this.flags.code !== undefined) {
      throw new CliError('usage_error', '--phone sends a new code, so --code cannot confirm it in the same run', {
        hint: 'run with --phone first, then with --method sms --code <code from the text message>',
        exitCode: exitCodes.usage,
      });
    }
    if (this.flags.code !== undefined) {
      await this.confirmSms(this.flags.code);
      return;
    }
    if (phone === undefined) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for the phone number', {
          hint: 'pass --phone (or TOLLGATE_2FA_PHONE) with your mobile number, like +15551234567',
          exitCode: exitCodes.usage,
        });
      }
      const { ask } = await import('../../prompt.js');
      phone = (await ask('Mobile number, in international format (like +15551234567): ')).trim();
    }
    const enrolment = (await this.call('POST', '/v1/me/2fa/sms', { phone })) as SmsEnrolment;
    if (!tty) {
      // Nobody to ask for the code: the pending number is the result, and a second run confirms it.
      if (this.jsonMode) {
        this.outJson(enrolment);
      } else {
        this.out(`phone\t${enrolment.phone}\nexpires_at\t${enrolment.expires_at}`);
      }
      this.note(
        'A code is on its way by text message. Turn SMS codes on with: tollgate 2fa enable --method sms --code <code from the text message>',
      );
      return;
    }
    this.note(`Sent a code to ${enrolment.phone}.`);
    const { ask } = await import('../../prompt.js');
    for (let attempt = 1; ; attempt++) {
      const code = (await ask('Code from the text message: ')).trim();
      if (code === '') continue;
      try {
        await this.confirmSms(code);
        return;
      } catch (error) {
        // Only a code that does not match is worth another try; anything else is final.
        if (!(error instanceof CliError) || error.code !== 'validation_failed' || attempt >= promptTries) throw error;
        this.note(`${this.style('red', error.code, 'stderr')}: ${error.message}; try again`);
      }
    }
  }

  private async confirmSms(code: string): Promise<void> {
    const status = (await this.call('POST', '/v1/me/2fa/sms/confirm', { code })) as TwoFactorStatus;
    if (this.jsonMode) {
      this.outJson({ sms: status.sms, phone: status.sms_phone });
      return;
    }
    this.out(`SMS codes are on: a login can be finished with a code sent to ${status.sms_phone}.`);
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

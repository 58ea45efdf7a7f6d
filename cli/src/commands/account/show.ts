import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';

interface Me {
  id: string;
  email: string;
  name: string | null;
  installation_role: string;
  email_verified: boolean;
  created_at: string;
}

interface TwoFactorStatus {
  totp: 'off' | 'pending' | 'enabled';
  totp_confirmed_at: string | null;
  email_codes: boolean;
  recovery_codes_remaining: number;
  methods: string[];
}

/** How people call the second factors of `methods`; recovery codes are counted apart. */
const methodNames: Record<string, string> = { totp: 'authenticator app', email: 'email codes', sms: 'SMS codes' };

/** One line saying what a login asks for after the password (from `methods`, so a new factor shows up too). */
function describeTwoFactor(status: TwoFactorStatus): string {
  const factors = status.methods.filter((method) => method !== 'recovery_code');
  if (factors.length === 0) return status.totp === 'pending' ? 'off (an authenticator app setup is pending)' : 'off';
  const recovery = status.methods.includes('recovery_code')
    ? `, ${status.recovery_codes_remaining} recovery code(s) left`
    : '';
  return `on: ${factors.map((method) => methodNames[method] ?? method).join(', ')}${recovery}`;
}

export default class AccountShow extends TollgateCommand<typeof AccountShow> {
  static override summary = 'Show your account: id, email, name, verification, two-factor status, creation time.';

  static override description =
    'Reads GET /v1/me and GET /v1/me/2fa. `tollgate whoami` prints only the email; this shows the whole account. When stdout is not a terminal each line is the field and its value separated by a tab.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    // One after the other: the first call may refresh the session, and the second must use the new one.
    const me = (await this.call('GET', '/v1/me')) as Me & { session_id?: string };
    const twoFactor = (await this.call('GET', '/v1/me/2fa')) as TwoFactorStatus;
    const account = {
      id: me.id,
      email: me.email,
      name: me.name,
      installation_role: me.installation_role,
      email_verified: me.email_verified,
      created_at: me.created_at,
      two_factor: twoFactor,
    };
    if (this.jsonMode) {
      this.outJson(account);
      return;
    }
    const fields: [string, string][] = [
      ['id', account.id],
      ['email', account.email],
      ['name', account.name ?? ''],
      ['verified', account.email_verified ? 'yes' : 'no (see tollgate account verify --resend)'],
      ['2fa', describeTwoFactor(twoFactor)],
      ['role', account.installation_role === 'admin' ? 'operator' : 'member'],
      ['created', account.created_at],
    ];
    this.out(renderFields(fields, { tty: process.stdout.isTTY === true }));
  }
}

import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type ApiKeyBody, durationFlag } from '../../key-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class KeysCreate extends TollgateCommand<typeof KeysCreate> {
  static override summary = "Create an API key for the team's services (printed once).";

  static override description =
    'Prints the key (tg_live_... or tg_test_... with --test) alone on standard output, so KEY=$(tollgate keys create) keeps it, and what it may do on standard error. It is shown this once: Tollgate keeps only a SHA-256 of its secret. Send it to the gateway as Authorization: Bearer <key> or x-api-key. --api, --method and --allow-ip limit where it works (repeat them); without them it works for every API, method and address. The key belongs to you unless --team-owned. Needs keys:write (developers and admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --name billing-worker',
    'KEY=$(<%= config.bin %> <%= command.id %> --api weather --method GET --allow-ip 10.0.0.0/8 --expires-in 90d)',
    '<%= config.bin %> <%= command.id %> --test --team-owned --json',
  ];

  static override flags = {
    team: teamFlag,
    name: Flags.string({ description: 'What the key is for, shown in `tollgate keys list`', env: 'TOLLGATE_KEY_NAME' }),
    api: Flags.string({
      description: 'Slug or id of an API the key may call (repeatable); default: all',
      multiple: true,
    }),
    method: Flags.string({ description: 'HTTP method the key may use (repeatable); default: all', multiple: true }),
    'allow-ip': Flags.string({
      description: 'IPv4/IPv6 address or CIDR network the key may be used from (repeatable); default: anywhere',
      multiple: true,
    }),
    'expires-in': Flags.string({
      description: 'Lifetime, e.g. 90d or 12h; default: never expires',
      env: 'TOLLGATE_KEY_EXPIRES_IN',
    }),
    test: Flags.boolean({ description: 'A test-mode key (tg_test_...)' }),
    'team-owned': Flags.boolean({ description: 'Owned by the team rather than by you' }),
  };

  async run(): Promise<void> {
    const expiresIn =
      this.flags['expires-in'] === undefined
        ? undefined
        : durationFlag('expires-in', this.flags['expires-in'], { allowZero: false });
    const team = await this.currentTeam(this.flags.team);
    const created = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/keys`, {
      ...(this.flags.name ? { name: this.flags.name } : {}),
      mode: this.flags.test ? 'test' : 'live',
      apis: this.flags.api ?? [],
      methods: (this.flags.method ?? []).map((method) => method.toUpperCase()),
      allowed_cidrs: this.flags['allow-ip'] ?? [],
      ...(expiresIn ? { expires_in: expiresIn } : {}),
      team_owned: this.flags['team-owned'],
    })) as ApiKeyBody;
    if (this.jsonMode) {
      this.outJson(created);
      return;
    }
    this.out(created.key ?? '');
    const limits = [
      created.apis.length > 0 ? `APIs ${created.apis.map((api) => api.slug).join(', ')}` : 'every API',
      created.methods.length > 0 ? `methods ${created.methods.join(', ')}` : 'every method',
      created.allowed_cidrs.length > 0 ? `from ${created.allowed_cidrs.join(', ')}` : 'from anywhere',
    ].join('; ');
    this.note(
      `Created the ${created.mode} key ${created.prefix}... (id ${created.id}${created.expires_at ? `, expires ${created.expires_at}` : ''}) for ${limits}.`,
    );
    this.note(
      this.style(
        'dim',
        'It is shown this once: store it now. Rotate it with `tollgate keys rotate <id>`, revoke it with `tollgate keys revoke <id>`.',
        'stderr',
      ),
    );
  }
}

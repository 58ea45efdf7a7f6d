import { Flags } from '@oclif/core';
import { type ApiDocument, apiBody, apiFlags, routesOf } from '../../api-flags.js';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

/** "Weather API v2" -> "weather-api-v2", the server's slug rules. */
function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}

export default class ApisCreate extends TollgateCommand<typeof ApisCreate> {
  static override summary = 'Register an API the gateway serves (operators).';

  static override description =
    'The gateway serves it at /<slug>/..., at --path-prefix, and for every request whose Host is one of --host; a host or path prefix belongs to one API. Needs the operator permission apis:manage. Gateways pick the change up within a second.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --name Weather --slug weather --upstream https://api.weather.example',
    '<%= config.bin %> <%= command.id %> --name Weather --upstream https://eu.weather.example --upstream https://us.weather.example --host api.weather.example --path-prefix /weather/v1 --timeout 10s --failure-policy fail-open',
    '<%= config.bin %> <%= command.id %> --name Weather --upstream https://api.weather.example --plugin \'request-size-limit={"max_bytes":1048576}\' --plugin cors',
  ];

  static override flags = {
    ...apiFlags,
    name: Flags.string({ description: 'Name shown to people (1 to 200 characters)', required: true }),
    slug: Flags.string({ description: 'The API is served at /<slug> [default: from the name]' }),
    upstream: Flags.string({
      description: 'Upstream base URL, http or https (repeat for several, tried round-robin)',
      multiple: true,
      required: true,
    }),
  };

  async run(): Promise<void> {
    const slug = this.flags.slug ?? slugify(this.flags.name);
    if (slug === '') {
      throw new CliError('usage_error', 'cannot make a slug from this name', {
        hint: 'pass --slug, like --slug weather',
        exitCode: exitCodes.usage,
      });
    }
    const api = (await this.call('POST', '/v1/apis', { ...apiBody(this.flags), slug })) as ApiDocument;
    if (this.jsonMode) this.outJson(api);
    else this.out(`Registered ${api.name} (${api.slug}), served at ${routesOf(api)}.`);
  }
}

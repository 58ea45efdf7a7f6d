import { Args, Flags } from '@oclif/core';
import { type ApiDocument, apiBody, apiFlags, routesOf } from '../../api-flags.js';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class ApisUpdate extends TollgateCommand<typeof ApisUpdate> {
  static override summary = 'Change an API (operators); each flag replaces what it names.';

  static override description =
    '--upstream, --host, --metric and --plugin replace the whole list when given. --slug renames the API, which moves it to /<new slug>. Giving nothing to change is a usage error (exit 2).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> weather --upstream https://eu.weather.example --timeout 5s',
    '<%= config.bin %> <%= command.id %> weather --clear-path-prefix --clear-hosts',
    '<%= config.bin %> <%= command.id %> weather --plugin \'cors={"origins":["https://app.example"]}\' --plugin \'request-size-limit={"max_bytes":1048576}\'',
  ];

  static override args = { api: Args.string({ description: 'Slug or id of the API', required: true }) };

  static override flags = {
    ...apiFlags,
    slug: Flags.string({ description: 'A new slug: the API moves to /<slug>' }),
    host: Flags.string({
      description: 'Host name routed to this API (repeatable; replaces the hosts)',
      multiple: true,
      exclusive: ['clear-hosts'],
    }),
    'clear-hosts': Flags.boolean({ description: 'Route no host to this API' }),
    'path-prefix': Flags.string({
      description: 'A path prefix routed to this API besides /<slug>, like /weather/v1',
      exclusive: ['clear-path-prefix'],
    }),
    'clear-path-prefix': Flags.boolean({ description: 'Remove the path prefix (the API stays at /<slug>)' }),
    plugin: Flags.string({
      description: apiFlags.plugin.description,
      multiple: true,
      exclusive: ['clear-plugins'],
    }),
    'clear-plugins': Flags.boolean({ description: 'Run no plugin for this API' }),
  };

  async run(): Promise<void> {
    const body = {
      ...apiBody(this.flags),
      ...(this.flags.slug === undefined ? {} : { slug: this.flags.slug }),
      ...(this.flags['clear-hosts'] ? { hosts: [] } : {}),
      ...(this.flags['clear-path-prefix'] ? { path_prefix: null } : {}),
      ...(this.flags['clear-plugins'] ? { plugins: [] } : {}),
    };
    if (Object.keys(body).length === 0) {
      throw new CliError('usage_error', 'nothing to change', {
        hint: 'pass at least one of --name, --slug, --upstream, --host, --path-prefix, --timeout, --failure-policy, --metric, --plugin, --clear-plugins',
        exitCode: exitCodes.usage,
      });
    }
    const api = (await this.call('PATCH', `/v1/apis/${encodeURIComponent(this.args.api)}`, body)) as ApiDocument;
    if (this.jsonMode) this.outJson(api);
    else this.out(`Updated ${api.name} (${api.slug}), served at ${routesOf(api)}.`);
  }
}

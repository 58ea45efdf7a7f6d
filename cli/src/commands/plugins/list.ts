import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

interface PluginDocument {
  name: string;
  description: string;
}

export default class PluginsList extends TollgateCommand<typeof PluginsList> {
  static override summary = 'List the plugins an API can run.';

  static override description =
    'Name them with `tollgate apis create|update --plugin NAME[=JSON]`; docs/gateway.md describes their configuration. With --json: {"plugins": [{"name", "description"}]}.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const answer = (await this.call('GET', '/v1/plugins')) as { plugins: PluginDocument[] };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    this.out(
      renderTable(
        answer.plugins,
        [
          { header: 'name', value: (plugin) => plugin.name },
          { header: 'description', value: (plugin) => plugin.description },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}

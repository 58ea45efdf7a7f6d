import { type ApiDocument, apiColumns, operatorApiColumns } from '../../api-flags.js';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

export default class ApisList extends TollgateCommand<typeof ApisList> {
  static override summary = 'List the APIs the gateway serves.';

  static override description =
    'Everyone signed in sees slugs, names, hosts and path prefixes (to limit keys to an API); operators also see upstreams, timeouts and failure policies. With --json: {"apis": [...], "config_version": N}.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const answer = (await this.call('GET', '/v1/apis')) as { apis: ApiDocument[]; config_version: number };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    if (answer.apis.length === 0) {
      this.note('No APIs yet; an operator registers one with `tollgate apis create`.');
      return;
    }
    const operator = answer.apis.some((api) => api.upstreams !== undefined);
    this.out(
      renderTable(answer.apis, operator ? operatorApiColumns : apiColumns, {
        tty: process.stdout.isTTY === true,
      }).trimEnd(),
    );
  }
}

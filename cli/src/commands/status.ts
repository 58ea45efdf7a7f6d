import { TollgateCommand } from '../base-command.js';
import { CliError } from '../cli-error.js';
import { renderTable } from '../output/table.js';

interface ComponentCheck {
  status: 'up' | 'down';
  driver: string;
  latency_ms: number;
  error?: string;
}

interface Readiness {
  status: 'ready' | 'not_ready';
  version: string;
  checks: Record<string, ComponentCheck>;
  workers?: { alive: number };
  error?: { code: string; message: string };
}

function isReadiness(value: unknown): value is Readiness {
  const body = value as Partial<Readiness> | null;
  return typeof body?.status === 'string' && typeof body.checks === 'object' && body.checks !== null;
}

export default class Status extends TollgateCommand<typeof Status> {
  static override summary = 'Show whether Tollgate is ready: its database, its counter store and its workers.';

  static override description =
    `Calls GET /readyz on the control-plane API. Exits 0 when every component is up, 1 when one is down or the API cannot be reached.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --api-url http://tollgate.internal:4000',
  ];

  async run(): Promise<void> {
    const apiUrl = await this.apiUrl();
    const { ux } = await import('@oclif/core');
    const showSpinner = !this.jsonMode && process.stderr.isTTY === true;
    if (showSpinner) ux.action.start(`Checking ${apiUrl}`, undefined, { stdout: false });
    let response: Response;
    try {
      response = await fetch(`${apiUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      if (showSpinner) ux.action.stop('unreachable');
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        'api_unreachable',
        `could not reach ${apiUrl} (${cause?.code ?? cause?.message ?? (error as Error).message})`,
        {
          hint: 'start Tollgate with `tollgate start`, or point --api-url (TOLLGATE_API_URL) at a running one',
        },
      );
    }
    const body: unknown = await response.json().catch(() => undefined);
    if (showSpinner) ux.action.stop();
    if (!isReadiness(body)) {
      throw new CliError(
        'unexpected_response',
        `${apiUrl}/readyz answered ${response.status} without a readiness report`,
        {
          hint: 'check that --api-url points at the Tollgate control-plane API, not the gateway',
        },
      );
    }

    if (this.jsonMode) {
      const { error: _error, ...report } = body;
      this.outJson({ api_url: apiUrl, ...report });
    } else {
      const ready = body.status === 'ready';
      this.out(
        `Tollgate ${body.version} at ${apiUrl}: ${ready ? this.style('green', 'ready') : this.style('red', 'not ready')}`,
      );
      const rows = Object.entries(body.checks).map(([name, check]) => ({ name, ...check }));
      this.out(
        renderTable(
          rows,
          [
            { header: 'component', value: (row) => row.name },
            { header: 'driver', value: (row) => row.driver },
            {
              header: 'status',
              value: (row) => (row.status === 'up' ? this.style('green', 'up') : this.style('red', 'down')),
            },
            { header: 'latency_ms', value: (row) => String(row.latency_ms) },
            { header: 'error', value: (row) => row.error ?? '' },
          ],
          { tty: process.stdout.isTTY === true },
        ).trimEnd(),
      );
      if (body.workers) this.out(`Workers alive: ${body.workers.alive}`);
    }
    if (body.status !== 'ready') {
      if (!this.jsonMode)
        this.note(`${this.style('red', 'not_ready', 'stderr')}: ${body.error?.message ?? 'a component is down'}`);
      this.exit(1);
    }
  }
}

import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

interface Entry {
  seq: number;
  occurred_at: string;
  actor_label: string;
  action: string;
  outcome: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
}

export default class AuditList extends TollgateCommand<typeof AuditList> {
  static override summary = 'List audit entries, newest first (operators).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --since 2026-11-01',
    "<%= config.bin %> <%= command.id %> --action 'auth.*' --json",
  ];

  static override flags = {
    since: Flags.string({ description: 'Only entries at or after this ISO time' }),
    until: Flags.string({ description: 'Only entries before this ISO time' }),
    actor: Flags.string({ description: 'Only entries by this user id' }),
    action: Flags.string({ description: "Only this action, or a prefix ending in * (like 'auth.*')" }),
    limit: Flags.integer({ description: 'At most this many entries (1-1000)', default: 100 }),
  };

  async run(): Promise<void> {
    const query = new URLSearchParams();
    for (const name of ['since', 'until', 'actor', 'action'] as const) {
      const value = this.flags[name];
      if (value !== undefined) query.set(name, value);
    }
    query.set('limit', String(this.flags.limit));
    const { entries } = (await this.call('GET', `/v1/audit?${query.toString()}`)) as { entries: Entry[] };
    if (this.jsonMode) {
      this.outJson({ entries });
      return;
    }
    this.out(
      renderTable(
        entries,
        [
          { header: 'seq', value: (row) => String(row.seq) },
          { header: 'time', value: (row) => row.occurred_at },
          { header: 'actor', value: (row) => row.actor_label },
          { header: 'action', value: (row) => row.action },
          { header: 'outcome', value: (row) => row.outcome },
          { header: 'target', value: (row) => (row.target_type ? `${row.target_type}:${row.target_id ?? ''}` : '') },
          { header: 'ip', value: (row) => row.ip ?? '' },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}

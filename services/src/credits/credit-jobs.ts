import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import type { Mailer } from '../mail/mailer.js';
import type { Database } from '../storage/database.js';
import { findTeam, listMembers } from '../teams/teams.js';
import { expireCredits, pendingLowBalanceAlerts } from './credit-ledger.js';
import { formatQuantity } from './credit-pool.js';

/** The credit-expiry job: writes off expired remainders every hour (a balance read already leaves them out). */
export function creditExpiryJob(options: { database: Database; logger: Logger; now?: () => Date }): Job {
  return {
    name: 'credit-expiry',
    intervalMs: 3_600_000,
    async run() {
      const result = await expireCredits(options.database, options.now?.() ?? new Date());
      if (result.entries > 0) options.logger.info({ entries: result.entries }, 'expired credits written off');
    },
  };
}

/**
 * Emails each low-balance crossing not yet delivered to the team's owner and admins, once: the
 * crossing is marked delivered before the emails go (as usage alerts do), so a crash between the two
 * loses an email rather than sending it twice. Answers how many crossings were delivered.
 */
export async function deliverLowBalanceAlerts(options: {
  database: Database;
  mailer: Mailer;
  logger?: Logger;
  now?: Date;
}): Promise<number> {
  let delivered = 0;
  for (const alert of await pendingLowBalanceAlerts(options.database)) {
    const claimed = await options.database.query(
      'UPDATE credit_low_balance_alerts SET delivered_at = $2 WHERE id = $1 AND delivered_at IS NULL',
      [alert.id, options.now ?? new Date()],
    );
    if (claimed.rowCount !== 1) continue;
    delivered += 1;
    const team = await findTeam(options.database, alert.teamId);
    if (!team) continue;
    const recipients = (await listMembers(options.database, alert.teamId)).filter(
      (member) => member.role === 'admin' || member.userId === team.ownerUserId,
    );
    const balance = formatQuantity(alert.pool, alert.balance);
    const threshold = formatQuantity(alert.pool, alert.threshold);
    const message = {
      subject: `${team.name}: credit balance low (${balance})`,
      text: [
        `The credit balance of ${team.name} fell below ${threshold}: ${balance} is left.`,
        '',
        'Buy a credit pack with `tollgate credits buy <pack>` (see `tollgate credits packs list`),',
        'or change the threshold with `tollgate credits alert`.',
      ].join('\n'),
    };
    for (const recipient of recipients) {
      try {
        await options.mailer.send({
          to: recipient.email,
          ...message,
          headers: { 'Auto-Submitted': 'auto-generated', 'X-Tollgate-Purpose': 'credit-low-balance' },
        });
      } catch (error) {
        options.logger?.warn(
          { err: error, team: alert.teamId, alert: alert.id },
          'could not email a low-balance alert',
        );
      }
    }
  }
  return delivered;
}

/** The low-balance delivery job, every minute. */
export function lowBalanceAlertJob(options: { database: Database; mailer: Mailer; logger: Logger }): Job {
  return {
    name: 'credit-low-balance-alerts',
    intervalMs: 60_000,
    async run() {
      const delivered = await deliverLowBalanceAlerts(options);
      if (delivered > 0) options.logger.info({ delivered }, 'low-balance alerts delivered');
    },
  };
}

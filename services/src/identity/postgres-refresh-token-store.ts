import type { Database } from '../storage/database.js';
import type { RefreshTokenStore } from './refresh-token-store.js';

/**
 * Refresh tokens in the `refresh_tokens` table, beside their sessions: the store without Redis
 * (the embedded default, or PostgreSQL alone). Issuing and forgetting happen in the caller's
 * transaction, so they commit or roll back with the session change.
 */
export function createPostgresRefreshTokenStore(database: Database): RefreshTokenStore {
  return {
    driver: 'postgres',
    async issue(tx, token) {
      await tx.query('INSERT INTO refresh_tokens (token_sha256, session_id, issued_at) VALUES ($1, $2, $3)', [
        token.tokenSha256,
        token.sessionId,
        token.now,
      ]);
    },
    async rotate(rotation) {
      return database.transaction(async (tx) => {
        // The row lock of this UPDATE makes a concurrent rotation of the same token wait, then find
        // it already exchanged (rotated_at set) and update nothing: it is reuse.
        const spent = await tx.query(
          `UPDATE refresh_tokens SET rotated_at = $3
           WHERE token_sha256 = $1 AND session_id = $2 AND rotated_at IS NULL`,
          [rotation.presentedSha256, rotation.sessionId, rotation.now],
        );
        if (spent.rowCount === 0) {
          const known = await tx.query('SELECT 1 FROM refresh_tokens WHERE token_sha256 = $1 AND session_id = $2', [
            rotation.presentedSha256,
            rotation.sessionId,
          ]);
          return known.rowCount > 0 ? 'reused' : 'unknown';
        }
        await tx.query('INSERT INTO refresh_tokens (token_sha256, session_id, issued_at) VALUES ($1, $2, $3)', [
          rotation.nextSha256,
          rotation.sessionId,
          rotation.now,
        ]);
        return 'rotated';
      });
    },
    async forget(tx, sessionIds) {
      if (sessionIds.length === 0) return;
      await tx.query('DELETE FROM refresh_tokens WHERE session_id = ANY($1::uuid[])', [sessionIds]);
    },
    async close() {},
  };
}

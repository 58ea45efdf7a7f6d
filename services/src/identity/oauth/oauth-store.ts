import { createHash, randomBytes } from 'node:crypto';
import type { MasterKeyring } from '../../secrets/master-keyring.js';
import type { Queryable } from '../../storage/database.js';
import type { TeamRole } from '../permissions.js';
import type { ProviderChecks, ProviderId, ProviderTokens } from './providers.js';

/** A login started at a provider must come back within this time. */
export const oauthLoginLifetimeMs = 10 * 60 * 1000;
/** The one-time code handed to the client after the provider answered works this long. */
export const loginCodeLifetimeMs = 2 * 60 * 1000;

const loginCodePrefix = 'tgo_';
const sha256 = (value: string) => createHash('sha256').update(value).digest();

export const identityTokensContext = (identityId: string) => `oauth_tokens:identity:${identityId}`;
export const ssoClientSecretContext = (teamId: string) => `sso_client_secret:team:${teamId}`;
const loginChecksContext = (stateHash: Buffer) => `oauth_login_checks:${stateHash.toString('hex')}`;

export function newState(): string {
  return randomBytes(32).toString('base64url');
}

export interface OAuthLogin {
  stateHash: Buffer;
  provider: ProviderId;
  teamId: string | null;
  linkUserId: string | null;
  checks: ProviderChecks;
  returnTo: string;
  clientState: string | null;
  clientCodeChallenge: string;
  expiresAt: Date;
  completedAt: Date | null;
  userId: string | null;
  consumedAt: Date | null;
}

interface OAuthLoginRow {
  state_sha256: Buffer;
  provider: ProviderId;
  team_id: string | null;
  link_user_id: string | null;
  provider_checks_sealed: string;
  return_to: string;
  client_state: string | null;
  client_code_challenge: string;
  expires_at: Date;
  completed_at: Date | null;
  user_id: string | null;
  consumed_at: Date | null;
}

function toLogin(row: OAuthLoginRow, keyring: MasterKeyring): OAuthLogin {
  const stateHash = Buffer.from(row.state_sha256);
  return {
    stateHash,
    provider: row.provider,
    teamId: row.team_id,
    linkUserId: row.link_user_id,
    checks: JSON.parse(
      keyring.decryptText(row.provider_checks_sealed, loginChecksContext(stateHash)),
    ) as ProviderChecks,
    returnTo: row.return_to,
    clientState: row.client_state,
    clientCodeChallenge: row.client_code_challenge,
    expiresAt: row.expires_at,
    completedAt: row.completed_at,
    userId: row.user_id,
    consumedAt: row.consumed_at,
  };
}

/** Records a login sent to a provider. Logins that ended over an hour ago are deleted on the way. */
export async function createOAuthLogin(
  db: Queryable,
  keyring: MasterKeyring,
  input: {
    provider: ProviderId;
    teamId?: string | undefined;
    linkUserId?: string | undefined;
    checks: ProviderChecks;
    returnTo: string;
    clientState?: string | undefined;
    clientCodeChallenge: string;
    now?: Date;
  },
): Promise<{ expiresAt: Date }> {
  const now = input.now ?? new Date();
  await db.query('DELETE FROM oauth_logins WHERE expires_at < $1', [new Date(now.getTime() - 60 * 60 * 1000)]);
  const stateHash = sha256(input.checks.state);
  const expiresAt = new Date(now.getTime() + oauthLoginLifetimeMs);
  await db.query(
    `INSERT INTO oauth_logins (state_sha256, provider, team_id, link_user_id, provider_checks_sealed, return_to,
       client_state, client_code_challenge, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      stateHash,
      input.provider,
      input.teamId ?? null,
      input.linkUserId ?? null,
      keyring.encrypt(JSON.stringify(input.checks), loginChecksContext(stateHash)),
      input.returnTo,
      input.clientState ?? null,
      input.clientCodeChallenge,
      now,
      expiresAt,
    ],
  );
  return { expiresAt };
}

const loginColumns = `state_sha256, provider, team_id, link_user_id, provider_checks_sealed, return_to, client_state,
  client_code_challenge, expires_at, completed_at, user_id, consumed_at`;

/**
 * Claims the login a provider's `state` names, once: the first callback with it wins, a replayed or
 * late one finds nothing. Claimed outside any transaction, so no lock is held while the provider is
 * asked to redeem its code.
 */
export async function claimOAuthLogin(
  db: Queryable,
  keyring: MasterKeyring,
  state: string,
  now = new Date(),
): Promise<OAuthLogin | undefined> {
  const result = await db.query<OAuthLoginRow>(
    `UPDATE oauth_logins SET completed_at = $2
     WHERE state_sha256 = $1 AND completed_at IS NULL AND expires_at > $2
     RETURNING ${loginColumns}`,
    [sha256(state), now],
  );
  return result.rows[0] ? toLogin(result.rows[0], keyring) : undefined;
}

/**
 * Ends a claimed login: with a user, issues the one-time login code the client exchanges for a
 * session (valid 2 minutes); without one (the provider refused), closes it for good.
 */
export async function completeOAuthLogin(
  tx: Queryable,
  input: { stateHash: Buffer; userId?: string; now?: Date },
): Promise<string | undefined> {
  const now = input.now ?? new Date();
  if (!input.userId) {
    await tx.query('UPDATE oauth_logins SET consumed_at = $2 WHERE state_sha256 = $1', [input.stateHash, now]);
    return undefined;
  }
  const code = `${loginCodePrefix}${randomBytes(32).toString('base64url')}`;
  await tx.query(
    `UPDATE oauth_logins SET login_code_sha256 = $2, user_id = $3, expires_at = LEAST(expires_at, $4)
     WHERE state_sha256 = $1`,
    [input.stateHash, sha256(code), input.userId, new Date(now.getTime() + loginCodeLifetimeMs)],
  );
  return code;
}

/** The completed login a one-time code names, locked; undefined when unknown. */
export async function findOAuthLoginByCode(
  tx: Queryable,
  keyring: MasterKeyring,
  code: string,
): Promise<OAuthLogin | undefined> {
  if (!code.startsWith(loginCodePrefix)) return undefined;
  const result = await tx.query<OAuthLoginRow>(
    `SELECT ${loginColumns} FROM oauth_logins WHERE login_code_sha256 = $1 FOR UPDATE`,
    [sha256(code)],
  );
  return result.rows[0] ? toLogin(result.rows[0], keyring) : undefined;
}

export async function consumeOAuthLogin(tx: Queryable, stateHash: Buffer, now = new Date()): Promise<void> {
  await tx.query('UPDATE oauth_logins SET consumed_at = $2 WHERE state_sha256 = $1', [stateHash, now]);
}

/** S256 of a PKCE verifier, as the client sent it in code_challenge. */
export function pkceChallengeOf(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export interface Identity {
  id: string;
  userId: string;
  provider: ProviderId;
  teamId: string | null;
  subject: string;
  email: string | null;
  createdAt: Date;
  lastLoginAt: Date | null;
}

interface IdentityRow {
  id: string;
  user_id: string;
  provider: ProviderId;
  team_id: string | null;
  subject: string;
  email: string | null;
  created_at: Date;
  last_login_at: Date | null;
}

const identityColumns = 'id, user_id, provider, team_id, subject, email, created_at, last_login_at';

const toIdentity = (row: IdentityRow): Identity => ({
  id: row.id,
  userId: row.user_id,
  provider: row.provider,
  teamId: row.team_id,
  subject: row.subject,
  email: row.email,
  createdAt: row.created_at,
  lastLoginAt: row.last_login_at,
});

export async function findIdentity(
  tx: Queryable,
  input: { provider: ProviderId; teamId: string | null; subject: string },
): Promise<Identity | undefined> {
  const result = await tx.query<IdentityRow>(
    `SELECT ${identityColumns} FROM user_identities
     WHERE provider = $1 AND team_id IS NOT DISTINCT FROM $2 AND subject = $3 FOR UPDATE`,
    [input.provider, input.teamId, input.subject],
  );
  return result.rows[0] ? toIdentity(result.rows[0]) : undefined;
}

export async function listIdentities(db: Queryable, userId: string): Promise<Identity[]> {
  const result = await db.query<IdentityRow>(
    `SELECT ${identityColumns} FROM user_identities WHERE user_id = $1 ORDER BY created_at`,
    [userId],
  );
  return result.rows.map(toIdentity);
}

/** Links a provider account to a user (or refreshes the link), sealing the provider's tokens. */
export async function saveIdentity(
  tx: Queryable,
  keyring: MasterKeyring,
  input: {
    existingId?: string | undefined;
    userId: string;
    provider: ProviderId;
    teamId: string | null;
    subject: string;
    email: string | undefined;
    tokens: ProviderTokens;
    now?: Date;
  },
): Promise<Identity> {
  const now = input.now ?? new Date();
  let id = input.existingId;
  if (!id) {
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO user_identities (user_id, provider, team_id, subject, email, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [input.userId, input.provider, input.teamId, input.subject, input.email ?? null, now],
    );
    id = inserted.rows[0]?.id ?? '';
  }
  const sealed = keyring.encrypt(JSON.stringify(input.tokens), identityTokensContext(id));
  const updated = await tx.query<IdentityRow>(
    `UPDATE user_identities SET email = $2, tokens_sealed = $3, last_login_at = $4 WHERE id = $1
     RETURNING ${identityColumns}`,
    [id, input.email ?? null, sealed, now],
  );
  return toIdentity(updated.rows[0] as IdentityRow);
}

/** Removes a linked identity, unless it is the user's last way to log in. */
export async function unlinkIdentity(
  tx: Queryable,
  input: { userId: string; identityId: string },
): Promise<'unlinked' | 'not_found' | 'last_login_method'> {
  const rows = await tx.query<{ id: string; has_password: boolean }>(
    `SELECT i.id, u.password_hash IS NOT NULL AS has_password
     FROM users u LEFT JOIN user_identities i ON i.user_id = u.id
     WHERE u.id = $1 FOR UPDATE OF u`,
    [input.userId],
  );
  const identities = rows.rows.filter((row) => row.id !== null);
  if (!identities.some((row) => row.id === input.identityId)) return 'not_found';
  if (!rows.rows[0]?.has_password && identities.length <= 1) return 'last_login_method';
  await tx.query('DELETE FROM user_identities WHERE id = $1 AND user_id = $2', [input.identityId, input.userId]);
  return 'unlinked';
}

export interface TeamSso {
  teamId: string;
  issuer: string;
  clientId: string;
  emailDomains: string[];
  defaultRole: TeamRole;
  createdAt: Date;
  updatedAt: Date;
}

interface TeamSsoRow {
  team_id: string;
  issuer: string;
  client_id: string;
  client_secret_sealed: string;
  email_domains: string[];
  default_role: TeamRole;
  created_at: Date;
  updated_at: Date;
}

const toTeamSso = (row: TeamSsoRow): TeamSso => ({
  teamId: row.team_id,
  issuer: row.issuer,
  clientId: row.client_id,
  emailDomains: row.email_domains,
  defaultRole: row.default_role,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** A team's SSO settings and, opened, its client secret. */
export async function findTeamSso(
  db: Queryable,
  keyring: MasterKeyring,
  teamId: string,
): Promise<(TeamSso & { clientSecret: string }) | undefined> {
  const result = await db.query<TeamSsoRow>('SELECT * FROM team_sso WHERE team_id = $1', [teamId]);
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    ...toTeamSso(row),
    clientSecret: keyring.decryptText(row.client_secret_sealed, ssoClientSecretContext(teamId)),
  };
}

/** The team whose SSO covers an email's domain, when exactly one does. */
export async function findSsoTeamForEmail(db: Queryable, email: string): Promise<string | undefined> {
  const domain = email.split('@').pop()?.trim().toLowerCase() ?? '';
  if (!domain) return undefined;
  const result = await db.query<{ team_id: string }>(
    'SELECT team_id FROM team_sso WHERE $1 = ANY (email_domains) LIMIT 2',
    [domain],
  );
  return result.rows.length === 1 ? result.rows[0]?.team_id : undefined;
}

export async function saveTeamSso(
  tx: Queryable,
  keyring: MasterKeyring,
  input: {
    teamId: string;
    issuer: string;
    clientId: string;
    /** Undefined keeps the stored secret. */
    clientSecret: string | undefined;
    emailDomains: string[];
    defaultRole: TeamRole;
    now?: Date;
  },
): Promise<TeamSso> {
  const now = input.now ?? new Date();
  const sealed =
    input.clientSecret === undefined ? null : keyring.encrypt(input.clientSecret, ssoClientSecretContext(input.teamId));
  const result = await tx.query<TeamSsoRow>(
    `INSERT INTO team_sso (team_id, issuer, client_id, client_secret_sealed, email_domains, default_role, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
     ON CONFLICT (team_id) DO UPDATE SET issuer = EXCLUDED.issuer, client_id = EXCLUDED.client_id,
       client_secret_sealed = COALESCE($4, team_sso.client_secret_sealed), email_domains = EXCLUDED.email_domains,
       default_role = EXCLUDED.default_role, updated_at = EXCLUDED.updated_at
     RETURNING *`,
    [input.teamId, input.issuer, input.clientId, sealed, input.emailDomains, input.defaultRole, now],
  );
  return toTeamSso(result.rows[0] as TeamSsoRow);
}

export async function deleteTeamSso(tx: Queryable, teamId: string): Promise<boolean> {
  const result = await tx.query('DELETE FROM team_sso WHERE team_id = $1', [teamId]);
  return result.rowCount > 0;
}

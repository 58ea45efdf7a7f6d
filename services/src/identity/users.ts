import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import { hashPassword, passwordProblems } from './passwords.js';

export type InstallationRole = 'admin' | 'member';

export interface User {
  id: string;
  email: string;
  name: string | null;
  installationRole: InstallationRole;
  emailVerifiedAt: Date | null;
  createdAt: Date;
}

interface UserRow {
  id: string;
  email: string;
  name: string | null;
  installation_role: InstallationRole;
  email_verified_at: Date | null;
  created_at: Date;
}

const columns = 'id, email, name, installation_role, email_verified_at, created_at';

function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    installationRole: row.installation_role,
    emailVerifiedAt: row.email_verified_at,
    createdAt: row.created_at,
  };
}

/** Emails compare case-insensitively (the unique index is on lower(email)); surrounding spaces go. */
export function normalizeEmail(email: string): string {
  return email.trim();
}

/**
 * Creates an account with a password after checking it against the policy. A taken email is
 * `email_taken`: callers facing the public (sign-up) must not pass that on as such.
 */
export async function createUserWithPassword(
  tx: Queryable,
  input: { email: string; password: string; name?: string; installationRole?: InstallationRole },
): Promise<User> {
  const email = normalizeEmail(input.email);
  const problems = passwordProblems(input.password, { email, ...(input.name ? { name: input.name } : {}) });
  if (problems.length > 0) {
    throw new TollgateError('validation_failed', `password: ${problems[0]}`, {
      details: { issues: problems.map((message) => ({ path: 'password', message })) },
    });
  }
  const passwordHash = await hashPassword(input.password);
  try {
    const result = await tx.query<UserRow>(
      `INSERT INTO users (email, name, password_hash, installation_role) VALUES ($1, $2, $3, $4) RETURNING ${columns}`,
      [email, input.name ?? null, passwordHash, input.installationRole ?? 'member'],
    );
    return toUser(result.rows[0] as UserRow);
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new TollgateError('email_taken', 'an account with this email exists');
    }
    throw error;
  }
}

export async function findUserById(db: Queryable, id: string): Promise<User | undefined> {
  const result = await db.query<UserRow>(`SELECT ${columns} FROM users WHERE id = $1 AND deleted_at IS NULL`, [id]);
  return result.rows[0] ? toUser(result.rows[0]) : undefined;
}

/** The account and its password hash, for a login attempt. */
export async function findLoginByEmail(
  db: Queryable,
  email: string,
): Promise<{ user: User; passwordHash: string | null } | undefined> {
  const result = await db.query<UserRow & { password_hash: string | null }>(
    `SELECT ${columns}, password_hash FROM users WHERE lower(email) = lower($1) AND deleted_at IS NULL`,
    [normalizeEmail(email)],
  );
  const row = result.rows[0];
  return row ? { user: toUser(row), passwordHash: row.password_hash } : undefined;
}

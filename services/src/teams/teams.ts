import { createHash, randomBytes } from 'node:crypto';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Membership, TeamRole } from '../identity/permissions.js';
import type { Queryable } from '../storage/database.js';

export interface Team {
  id: string;
  name: string;
  slug: string;
  ownerUserId: string | null;
  /** Members without a second factor may not use the team (only see it and leave it). */
  requireTwoFactor: boolean;
  createdAt: Date;
}

export interface TeamMember {
  userId: string;
  email: string;
  name: string | null;
  role: TeamRole;
  grants: string[];
  revocations: string[];
  joinedAt: Date;
}

interface TeamRow {
  id: string;
  name: string;
  slug: string;
  owner_user_id: string | null;
  require_two_factor: boolean;
  created_at: Date;
}

const toTeam = (row: TeamRow): Team => ({
  id: row.id,
  name: row.name,
  slug: row.slug,
  ownerUserId: row.owner_user_id,
  requireTwoFactor: row.require_two_factor,
  createdAt: row.created_at,
});

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A slug from a name: "Acme Corp." -> "acme-corp". */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return slug === '' ? 'team' : slug;
}

export const slugPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Creates a team with its creator as owner and admin. A taken slug is 409 `slug_taken`. */
export async function createTeam(
  tx: Queryable,
  input: { name: string; slug?: string; creatorUserId: string },
): Promise<Team> {
  const slug = input.slug ?? slugify(input.name);
  if (!slugPattern.test(slug)) {
    throw new TollgateError(
      'validation_failed',
      'slug: use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit',
    );
  }
  let team: Team;
  try {
    const result = await tx.query<TeamRow>(
      `INSERT INTO teams (name, slug, created_by_user_id, owner_user_id) VALUES ($1, $2, $3, $3)
       RETURNING id, name, slug, owner_user_id, require_two_factor, created_at`,
      [input.name, slug, input.creatorUserId],
    );
    team = toTeam(result.rows[0] as TeamRow);
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new TollgateError('slug_taken', `the team slug "${slug}" is taken`, { hint: 'choose another with --slug' });
    }
    throw error;
  }
  await tx.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'admin')`, [
    team.id,
    input.creatorUserId,
  ]);
  return team;
}

/** A team by id or slug, or undefined. */
export async function findTeam(db: Queryable, idOrSlug: string): Promise<Team | undefined> {
  const byId = uuidPattern.test(idOrSlug);
  const result = await db.query<TeamRow>(
    `SELECT id, name, slug, owner_user_id, require_two_factor, created_at FROM teams WHERE ${byId ? 'id = $1' : 'slug = $1'}`,
    [byId ? idOrSlug : idOrSlug.toLowerCase()],
  );
  return result.rows[0] ? toTeam(result.rows[0]) : undefined;
}

export async function findMembership(db: Queryable, teamId: string, userId: string): Promise<Membership | undefined> {
  const result = await db.query<{ role: TeamRole; grants: string[]; revocations: string[] }>(
    'SELECT role, grants, revocations FROM team_members WHERE team_id = $1 AND user_id = $2',
    [teamId, userId],
  );
  const row = result.rows[0];
  return row ? { role: row.role, grants: row.grants, revocations: row.revocations } : undefined;
}

export async function listTeamsOf(db: Queryable, userId: string): Promise<(Team & { role: TeamRole })[]> {
  const result = await db.query<TeamRow & { role: TeamRole }>(
    `SELECT t.id, t.name, t.slug, t.owner_user_id, t.require_two_factor, t.created_at, m.role
     FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 ORDER BY t.name`,
    [userId],
  );
  return result.rows.map((row) => ({ ...toTeam(row), role: row.role }));
}

export async function listMembers(db: Queryable, teamId: string): Promise<TeamMember[]> {
  const result = await db.query<{
    user_id: string;
    email: string;
    name: string | null;
    role: TeamRole;
    grants: string[];
    revocations: string[];
    created_at: Date;
  }>(
    `SELECT m.user_id, u.email, u.name, m.role, m.grants, m.revocations, m.created_at
     FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 ORDER BY m.created_at`,
    [teamId],
  );
  return result.rows.map((row) => ({
    userId: row.user_id,
    email: row.email,
    name: row.name,
    role: row.role,
    grants: row.grants,
    revocations: row.revocations,
    joinedAt: row.created_at,
  }));
}

/** Refuses a change that would leave the team without an admin. Call after the change, in its transaction. */
async function requireAnAdmin(tx: Queryable, teamId: string): Promise<void> {
  const admins = await tx.query(`SELECT 1 FROM team_members WHERE team_id = $1 AND role = 'admin' LIMIT 1`, [teamId]);
  if (admins.rowCount === 0) {
    throw new TollgateError('last_admin', 'a team needs at least one admin', {
      hint: 'make another member admin first',
    });
  }
}

export async function updateMember(
  tx: Queryable,
  input: { teamId: string; userId: string; role?: TeamRole; grants?: string[]; revocations?: string[] },
): Promise<boolean> {
  const result = await tx.query(
    `UPDATE team_members SET role = coalesce($3, role), grants = coalesce($4, grants), revocations = coalesce($5, revocations)
     WHERE team_id = $1 AND user_id = $2`,
    [input.teamId, input.userId, input.role ?? null, input.grants ?? null, input.revocations ?? null],
  );
  if (result.rowCount === 0) return false;
  await requireAnAdmin(tx, input.teamId);
  return true;
}

/** Removes a member (or lets one leave). The owner cannot be removed: transfer ownership first. */
export async function removeMember(tx: Queryable, input: { team: Team; userId: string }): Promise<boolean> {
  if (input.team.ownerUserId === input.userId) {
    throw new TollgateError('owner_cannot_leave', 'the owner cannot leave or be removed', {
      hint: 'transfer ownership to another admin first',
    });
  }
  const result = await tx.query('DELETE FROM team_members WHERE team_id = $1 AND user_id = $2', [
    input.team.id,
    input.userId,
  ]);
  if (result.rowCount === 0) return false;
  await requireAnAdmin(tx, input.team.id);
  return true;
}

/** Makes another member the owner; they become admin if they were not. */
export async function transferOwnership(tx: Queryable, input: { teamId: string; toUserId: string }): Promise<void> {
  const member = await tx.query('SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2 FOR UPDATE', [
    input.teamId,
    input.toUserId,
  ]);
  if (member.rowCount === 0) throw new TollgateError('not_found', 'the new owner must be a member of the team');
  await tx.query(`UPDATE team_members SET role = 'admin' WHERE team_id = $1 AND user_id = $2`, [
    input.teamId,
    input.toUserId,
  ]);
  await tx.query('UPDATE teams SET owner_user_id = $2, updated_at = now() WHERE id = $1', [
    input.teamId,
    input.toUserId,
  ]);
}

// --- invitations -------------------------------------------------------------------------------

export const invitationLifetimeMs = 7 * 24 * 60 * 60 * 1000;
const sha256 = (value: string) => createHash('sha256').update(value).digest();

/**
 * Invites an address into a team with a role. Returns the single-use token, valid 7 days; only its
 * hash is stored. Inviting the same address again replaces the open invitation.
 */
export async function createInvitation(
  tx: Queryable,
  input: { teamId: string; email: string; role: TeamRole; invitedByUserId: string; now?: Date },
): Promise<{ id: string; token: string; expiresAt: Date }> {
  const now = input.now ?? new Date();
  const email = input.email.trim();
  const member = await tx.query(
    'SELECT 1 FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 AND lower(u.email) = lower($2)',
    [input.teamId, email],
  );
  if (member.rowCount > 0) throw new TollgateError('already_member', `${email} is already a member of this team`);
  await tx.query(
    `UPDATE team_invitations SET revoked_at = $3
     WHERE team_id = $1 AND lower(email) = lower($2) AND accepted_at IS NULL AND revoked_at IS NULL`,
    [input.teamId, email, now],
  );
  const token = `tgi_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + invitationLifetimeMs);
  const result = await tx.query<{ id: string }>(
    `INSERT INTO team_invitations (team_id, email, role, token_sha256, invited_by_user_id, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [input.teamId, email, input.role, sha256(token), input.invitedByUserId, now, expiresAt],
  );
  return { id: result.rows[0]?.id ?? '', token, expiresAt };
}

/**
 * Accepts an invitation for the signed-in user, whose email must be the invited one. Expired,
 * used, replaced or unknown tokens are all `invitation_invalid`.
 */
export async function acceptInvitation(
  tx: Queryable,
  input: { token: string; userId: string; userEmail: string; now?: Date },
): Promise<{ teamId: string; role: TeamRole; invitationId: string }> {
  const now = input.now ?? new Date();
  const found = await tx.query<{
    id: string;
    team_id: string;
    email: string;
    role: TeamRole;
    expires_at: Date;
    accepted_at: Date | null;
    revoked_at: Date | null;
  }>(
    `SELECT id, team_id, email, role, expires_at, accepted_at, revoked_at FROM team_invitations
     WHERE token_sha256 = $1 FOR UPDATE`,
    [sha256(input.token)],
  );
  const invitation = found.rows[0];
  if (
    !invitation ||
    invitation.accepted_at ||
    invitation.revoked_at ||
    invitation.expires_at.getTime() <= now.getTime()
  ) {
    throw new TollgateError('invitation_invalid', 'this invitation is invalid, expired or already used', {
      hint: 'ask an admin of the team for a new one',
    });
  }
  if (invitation.email.toLowerCase() !== input.userEmail.toLowerCase()) {
    throw new TollgateError(
      'invitation_invalid',
      `this invitation is for ${invitation.email}; you are signed in as ${input.userEmail}`,
      {
        hint: 'sign in with the invited address',
      },
    );
  }
  await tx.query(
    `INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (team_id, user_id) DO NOTHING`,
    [invitation.team_id, input.userId, invitation.role],
  );
  await tx.query('UPDATE team_invitations SET accepted_at = $2, accepted_by_user_id = $3 WHERE id = $1', [
    invitation.id,
    now,
    input.userId,
  ]);
  return { teamId: invitation.team_id, role: invitation.role, invitationId: invitation.id };
}

/** Turns the team's two-factor requirement on or off. */
export async function setTwoFactorRequirement(
  tx: Queryable,
  input: { teamId: string; required: boolean },
): Promise<void> {
  await tx.query('UPDATE teams SET require_two_factor = $2, updated_at = now() WHERE id = $1', [
    input.teamId,
    input.required,
  ]);
}

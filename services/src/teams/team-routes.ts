import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry, emailPseudonym } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { linkBase } from '../http/link-base.js';
import { defineRoute } from '../http/route.js';
import { authenticate, type Caller, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import { isTeamPermission, type Membership, type Permission, teamRoles } from '../identity/permissions.js';
import { loadTwoFactorSettings, loginMethods } from '../identity/two-factor-store.js';
import type { Mailer } from '../mail/mailer.js';
import type { Database } from '../storage/database.js';
import {
  acceptInvitation,
  createInvitation,
  createTeam,
  findMembership,
  findTeam,
  listMembers,
  listTeamsOf,
  removeMember,
  setTwoFactorRequirement,
  type Team,
  transferOwnership,
  updateMember,
} from './teams.js';

export interface TeamRouteOptions {
  database: Database;
  /** Key of the email pseudonyms in audit entries (emailPseudonym). */
  auditKey: Buffer;
  signingKey: Buffer;
  mailer: Mailer;
  /** Base of links in emails; the request's origin when unset. */
  publicUrl: string | undefined;
}

const roleSchema = z.enum(teamRoles);
const permissionList = z
  .array(z.string())
  .max(50)
  .refine((values) => values.every(isTeamPermission), 'lists team permissions only (see docs/permissions.md)');

const teamSchema = z.object({
  id: z.string(),
  name: z.string(),
  slug: z.string(),
  owner_user_id: z.string().nullable(),
  require_two_factor: z.boolean(),
  created_at: z.string(),
});

const teamBody = (team: Team) => ({
  id: team.id,
  name: team.name,
  slug: team.slug,
  owner_user_id: team.ownerUserId,
  require_two_factor: team.requireTwoFactor,
  created_at: team.createdAt.toISOString(),
});

const params = (ctx: Context) => (ctx as unknown as { params: Record<string, string> }).params;

export interface TeamAccess {
  caller: Caller;
  team: Team;
  membership: Membership | undefined;
}

/**
 * Signed in, the team exists and the caller may see it (member or operator: otherwise 404, so
 * outsiders cannot probe which teams exist), and holds `permission` (otherwise 403 + audit entry).
 */
export async function teamAccess(
  ctx: Context,
  options: Pick<TeamRouteOptions, 'database' | 'signingKey'>,
  permission: Permission | ((caller: Caller) => Permission),
): Promise<TeamAccess> {
  const caller = await authenticate(ctx, options);
  const team = await findTeam(options.database, params(ctx).team ?? '');
  const membership = team ? await findMembership(options.database, team.id, caller.user.id) : undefined;
  if (!team || (!membership && caller.user.installationRole !== 'admin')) {
    throw new TollgateError('not_found', 'no such team');
  }
  const needed = typeof permission === 'function' ? permission(caller) : permission;
  // A team that requires two factors lets a member without one see it and leave it, nothing more.
  if (team.requireTwoFactor && membership && needed !== 'team:read') {
    const methods = loginMethods(await loadTwoFactorSettings(options.database, caller.user.id));
    if (methods.length === 0) {
      throw new TollgateError('two_factor_required_by_team', `${team.name} requires two-factor authentication`, {
        hint: 'turn it on with `tollgate 2fa enable`, then try again',
      });
    }
  }
  await authorize(ctx, {
    database: options.database,
    caller,
    permission: needed,
    ...(membership ? { membership } : {}),
    teamId: team.id,
    target: { type: 'team', id: team.id },
  });
  return { caller, team, membership };
}

export function teamRoutes(options: TeamRouteOptions) {
  const { database, mailer } = options;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/teams',
      operationId: 'createTeam',
      summary: 'Create a team; you become its owner and admin',
      tags: ['teams'],
      body: z.object({ name: z.string().trim().min(1).max(200), slug: z.string().optional() }),
      responses: { 201: { description: 'Created', schema: teamSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticate(ctx, options);
        const team = await database.transaction(async (tx) => {
          const created = await createTeam(tx, {
            name: body.name,
            ...(body.slug ? { slug: body.slug } : {}),
            creatorUserId: caller.user.id,
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'team.created',
              outcome: 'success',
              targetType: 'team',
              targetId: created.id,
              teamId: created.id,
            }),
          );
          return created;
        });
        ctx.status = 201;
        ctx.body = teamBody(team);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams',
      operationId: 'listTeams',
      summary: 'The teams you belong to, with your role in each',
      tags: ['teams'],
      responses: {
        200: { description: 'Teams', schema: z.object({ teams: z.array(teamSchema.extend({ role: roleSchema })) }) },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        const teams = await listTeamsOf(database, caller.user.id);
        ctx.body = { teams: teams.map((team) => ({ ...teamBody(team), role: team.role })) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team',
      operationId: 'getTeam',
      summary: 'A team, by id or slug (team:read)',
      tags: ['teams'],
      responses: { 200: { description: 'The team', schema: teamSchema } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'team:read');
        ctx.body = teamBody(team);
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/v1/teams/:team',
      operationId: 'updateTeam',
      summary: "Change the team's settings (team:manage)",
      description: 'require_two_factor: members without a second factor can then only see the team and leave it.',
      tags: ['teams'],
      body: z.object({ require_two_factor: z.boolean() }),
      responses: { 200: { description: 'The team', schema: teamSchema } },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'team:manage');
        if (
          body.require_two_factor &&
          loginMethods(await loadTwoFactorSettings(database, caller.user.id)).length === 0
        ) {
          // Otherwise the admin would lock themselves out of the setting they just changed.
          throw new TollgateError('two_factor_not_enabled', 'turn on two-factor authentication for yourself first', {
            hint: 'tollgate 2fa enable',
          });
        }
        await database.transaction(async (tx) => {
          await setTwoFactorRequirement(tx, { teamId: team.id, required: body.require_two_factor });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'team.settings_changed',
              outcome: 'success',
              targetType: 'team',
              targetId: team.id,
              teamId: team.id,
              details: { require_two_factor: body.require_two_factor },
            }),
          );
        });
        ctx.body = teamBody({ ...team, requireTwoFactor: body.require_two_factor });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/members',
      operationId: 'listTeamMembers',
      summary: 'Members, their roles and per-member permission changes (members:read)',
      tags: ['teams'],
      responses: {
        200: {
          description: 'Members',
          schema: z.object({
            members: z.array(
              z.object({
                user_id: z.string(),
                email: z.string(),
                name: z.string().nullable(),
                role: roleSchema,
                owner: z.boolean(),
                grants: z.array(z.string()),
                revocations: z.array(z.string()),
                joined_at: z.string(),
              }),
            ),
          }),
        },
      },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'members:read');
        const members = await listMembers(database, team.id);
        ctx.body = {
          members: members.map((member) => ({
            user_id: member.userId,
            email: member.email,
            name: member.name,
            role: member.role,
            owner: member.userId === team.ownerUserId,
            grants: member.grants,
            revocations: member.revocations,
            joined_at: member.joinedAt.toISOString(),
          })),
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/invitations',
      operationId: 'inviteTeamMember',
      summary: 'Invite someone by email (members:invite)',
      description:
        'Emails a single-use link valid for 7 days. Inviting the same address again replaces the open invitation.',
      tags: ['teams'],
      body: z.object({
        email: z
          .string()
          .trim()
          .regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address'),
        role: roleSchema.default('user'),
      }),
      responses: {
        201: {
          description: 'Invited',
          schema: z.object({ id: z.string(), email: z.string(), role: roleSchema, expires_at: z.string() }),
        },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'members:invite');
        const invitation = await database.transaction(async (tx) => {
          const created = await createInvitation(tx, {
            teamId: team.id,
            email: body.email,
            role: body.role,
            invitedByUserId: caller.user.id,
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'team.member_invited',
              outcome: 'success',
              targetType: 'invitation',
              targetId: created.id,
              teamId: team.id,
              details: { email: emailPseudonym(options.auditKey, body.email), role: body.role },
            }),
          );
          return created;
        });
        const base = linkBase(ctx, options.publicUrl);
        await mailer.send({
          to: body.email,
          subject: `You are invited to ${team.name} on Tollgate`,
          text: [
            `${caller.user.name ?? caller.user.email} invited you to join the team "${team.name}" as ${body.role}.`,
            '',
            'Sign in (or sign up) with this address, then accept with:',
            `  tollgate teams accept ${invitation.token}`,
            `or POST ${base}/v1/invitations/accept with {"token": "${invitation.token}"}.`,
            '',
            `The invitation works once and expires on ${invitation.expiresAt.toISOString()}.`,
          ].join('\n'),
        });
        ctx.status = 201;
        ctx.body = {
          id: invitation.id,
          email: body.email,
          role: body.role,
          expires_at: invitation.expiresAt.toISOString(),
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/invitations/accept',
      operationId: 'acceptInvitation',
      summary: 'Join a team with the token from an invitation email',
      description:
        'You must be signed in with the invited address. Expired, used or replaced invitations answer 400 invitation_invalid.',
      tags: ['teams'],
      body: z.object({ token: z.string().min(1).max(200) }),
      responses: { 200: { description: 'Joined', schema: z.object({ team: teamSchema, role: roleSchema }) } },
      handler: async (ctx, { body }) => {
        const caller = await authenticate(ctx, options);
        const accepted = await database.transaction(async (tx) => {
          const result = await acceptInvitation(tx, {
            token: body.token,
            userId: caller.user.id,
            userEmail: caller.user.email,
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'team.invitation_accepted',
              outcome: 'success',
              targetType: 'invitation',
              targetId: result.invitationId,
              teamId: result.teamId,
              details: { role: result.role },
            }),
          );
          return result;
        });
        const team = (await findTeam(database, accepted.teamId)) as Team;
        ctx.body = { team: teamBody(team), role: accepted.role };
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/v1/teams/:team/members/:user',
      operationId: 'updateTeamMember',
      summary: "Change a member's role, grants or revocations (members:manage)",
      tags: ['teams'],
      body: z.object({
        role: roleSchema.optional(),
        grants: permissionList.optional(),
        revocations: permissionList.optional(),
      }),
      responses: { 204: { description: 'Changed' } },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'members:manage');
        const userId = params(ctx).user ?? '';
        if (!/^[0-9a-f-]{36}$/i.test(userId)) throw new TollgateError('not_found', 'no such member');
        const changed = await database.transaction(async (tx) => {
          const done = await updateMember(tx, {
            teamId: team.id,
            userId,
            ...(body.role ? { role: body.role } : {}),
            ...(body.grants ? { grants: body.grants } : {}),
            ...(body.revocations ? { revocations: body.revocations } : {}),
          });
          if (done) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'team.member_updated',
                outcome: 'success',
                targetType: 'user',
                targetId: userId,
                teamId: team.id,
                details: body,
              }),
            );
          }
          return done;
        });
        if (!changed) throw new TollgateError('not_found', 'no such member');
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/teams/:team/members/:user',
      operationId: 'removeTeamMember',
      summary: 'Remove a member (members:manage), or leave the team (your own id)',
      tags: ['teams'],
      responses: { 204: { description: 'Removed' } },
      handler: async (ctx) => {
        const userId = params(ctx).user ?? '';
        if (!/^[0-9a-f-]{36}$/i.test(userId)) throw new TollgateError('not_found', 'no such member');
        // Leaving needs only membership; removing someone else needs members:manage.
        const { caller, team } = await teamAccess(ctx, options, (who) =>
          who.user.id === userId ? 'team:read' : 'members:manage',
        );
        const leaving = userId === caller.user.id;
        const removed = await database.transaction(async (tx) => {
          const done = await removeMember(tx, { team, userId });
          if (done) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: leaving ? 'team.member_left' : 'team.member_removed',
                outcome: 'success',
                targetType: 'user',
                targetId: userId,
                teamId: team.id,
              }),
            );
          }
          return done;
        });
        if (!removed) throw new TollgateError('not_found', 'no such member');
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/transfer',
      operationId: 'transferTeamOwnership',
      summary: 'Make another member the owner (the owner only)',
      tags: ['teams'],
      body: z.object({ user_id: z.string().uuid() }),
      responses: { 204: { description: 'Transferred' } },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'members:manage');
        if (team.ownerUserId !== caller.user.id && caller.user.installationRole !== 'admin') {
          throw new TollgateError('forbidden', 'only the owner can transfer ownership');
        }
        await database.transaction(async (tx) => {
          await transferOwnership(tx, { teamId: team.id, toUserId: body.user_id });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'team.ownership_transferred',
              outcome: 'success',
              targetType: 'user',
              targetId: body.user_id,
              teamId: team.id,
            }),
          );
        });
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/billing',
      operationId: 'getTeamBilling',
      summary: "The team's subscription and payment state (billing:read)",
      tags: ['billing'],
      responses: {
        200: {
          description: 'Billing state',
          schema: z.object({
            subscription: z
              .object({
                id: z.string(),
                status: z.string(),
                currency: z.string(),
                billing_interval: z.string(),
                current_period_start: z.string(),
                current_period_end: z.string(),
                cancel_at_period_end: z.boolean(),
              })
              .nullable(),
          }),
        },
      },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'billing:read');
        const result = await database.query<{
          id: string;
          status: string;
          currency: string;
          billing_interval: string;
          current_period_start: Date;
          current_period_end: Date;
          cancel_at_period_end: boolean;
        }>(
          `SELECT id, status, currency, billing_interval, current_period_start, current_period_end, cancel_at_period_end
           FROM subscriptions WHERE team_id = $1 AND status <> 'canceled' ORDER BY created_at DESC LIMIT 1`,
          [team.id],
        );
        const row = result.rows[0];
        ctx.body = {
          subscription: row
            ? {
                id: row.id,
                status: row.status,
                currency: row.currency,
                billing_interval: row.billing_interval,
                current_period_start: row.current_period_start.toISOString(),
                current_period_end: row.current_period_end.toISOString(),
                cancel_at_period_end: row.cancel_at_period_end,
              }
            : null,
        };
      },
    }),
  ];
}

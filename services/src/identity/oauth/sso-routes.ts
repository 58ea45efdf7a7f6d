import type { Context } from 'koa';
import * as oidc from 'openid-client';
import { z } from 'zod';
import { appendAuditEntry } from '../../audit/index.js';
import { TollgateError } from '../../errors/tollgate-error.js';
import { defineRoute } from '../../http/route.js';
import type { MasterKeyring } from '../../secrets/master-keyring.js';
import type { Database } from '../../storage/database.js';
import { teamAccess } from '../../teams/team-routes.js';
import { type Caller, callerAudit } from '../authenticate.js';
import { teamRoles } from '../permissions.js';
import { deleteTeamSso, findTeamSso, saveTeamSso, type TeamSso } from './oauth-store.js';
import { assertPublicIssuer, checkIssuerUrl } from './providers.js';

export interface SsoRouteOptions {
  database: Database;
  keyring: MasterKeyring;
  signingKey: Buffer;
  /** Allow issuers on private and loopback addresses (TOLLGATE_SSO_PRIVATE_ISSUERS). */
  privateIssuers?: boolean | undefined;
}

const ssoSchema = z.object({
  team_id: z.string(),
  issuer: z.string(),
  client_id: z.string(),
  client_secret_set: z.literal(true).describe('The secret is stored sealed and never shown again'),
  email_domains: z.array(z.string()),
  default_role: z.enum(teamRoles),
  created_at: z.string(),
  updated_at: z.string(),
});

const ssoBody = (sso: TeamSso): z.infer<typeof ssoSchema> => ({
  team_id: sso.teamId,
  issuer: sso.issuer,
  client_id: sso.clientId,
  client_secret_set: true,
  email_domains: sso.emailDomains,
  default_role: sso.defaultRole,
  created_at: sso.createdAt.toISOString(),
  updated_at: sso.updatedAt.toISOString(),
});

const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** Checks that the issuer answers OpenID discovery, so a typo is caught now rather than at the first login. */
async function checkDiscovery(issuer: URL, clientId: string): Promise<void> {
  try {
    await oidc.discovery(issuer, clientId, undefined, undefined, {
      timeout: 10,
      ...(issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
  } catch (error) {
    throw new TollgateError('provider_unavailable', `OpenID discovery at ${issuer.href} failed`, {
      details: { reason: (error as Error).message },
      hint: 'the issuer must serve /.well-known/openid-configuration whose "issuer" is exactly this URL',
    });
  }
}

/** A team's enterprise SSO: its own OpenID provider, set by an admin of the team (team:manage). */
export function ssoRoutes(options: SsoRouteOptions) {
  const { database, keyring } = options;
  /** What an admin did to the team's SSO. */
  const ssoAudit = (ctx: Context, caller: Caller, teamId: string, action: string, details?: Record<string, unknown>) =>
    callerAudit(ctx, caller, {
      action,
      outcome: 'success',
      targetType: 'team',
      targetId: teamId,
      teamId,
      ...(details ? { details } : {}),
    });
  return [
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/sso',
      operationId: 'getTeamSso',
      summary: "The team's single sign-on settings (team:read)",
      tags: ['teams'],
      responses: { 200: { description: 'SSO settings', schema: ssoSchema } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'team:read');
        const sso = await findTeamSso(database, keyring, team.id);
        if (!sso) throw new TollgateError('sso_not_configured', 'this team has no single sign-on');
        ctx.body = ssoBody(sso);
      },
    }),
    defineRoute({
      method: 'put',
      path: '/v1/teams/:team/sso',
      operationId: 'setTeamSso',
      summary: "Set the team's single sign-on (team:manage)",
      description:
        'Any OpenID Connect provider (Okta, Entra ID, Google Workspace, Keycloak, ...). Register ' +
        '`<public URL>/v1/auth/oauth/callback` as its redirect URI. The issuer must answer discovery now. ' +
        'client_secret may be left out when changing other settings. People who sign in through it join ' +
        'the team with default_role; with email_domains, only emails in those domains are let in.',
      tags: ['teams'],
      body: z.object({
        issuer: z.string().min(1).max(500),
        client_id: z.string().min(1).max(500),
        client_secret: z.string().min(1).max(2000).optional(),
        email_domains: z
          .array(z.string().trim().toLowerCase().regex(domainPattern, 'must be a domain name like example.com'))
          .max(50)
          .default([]),
        default_role: z.enum(teamRoles).default('user'),
      }),
      responses: { 200: { description: 'SSO settings', schema: ssoSchema } },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'team:manage');
        const issuer = checkIssuerUrl(body.issuer);
        if (!options.privateIssuers) await assertPublicIssuer(issuer);
        const existing = await findTeamSso(database, keyring, team.id);
        if (!existing && body.client_secret === undefined) {
          throw new TollgateError('validation_failed', 'client_secret: required when setting up SSO');
        }
        await checkDiscovery(issuer, body.client_id);
        const saved = await database.transaction(async (tx) => {
          const sso = await saveTeamSso(tx, keyring, {
            teamId: team.id,
            issuer: body.issuer,
            clientId: body.client_id,
            clientSecret: body.client_secret,
            emailDomains: [...new Set(body.email_domains)],
            defaultRole: body.default_role,
          });
          await appendAuditEntry(
            tx,
            ssoAudit(ctx, caller, team.id, 'team.sso_configured', {
              issuer: sso.issuer,
              client_id: sso.clientId,
              secret_changed: body.client_secret !== undefined,
              email_domains: sso.emailDomains,
              default_role: sso.defaultRole,
            }),
          );
          return sso;
        });
        ctx.body = ssoBody(saved);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/teams/:team/sso',
      operationId: 'removeTeamSso',
      summary: "Remove the team's single sign-on (team:manage)",
      description: 'Identities already linked through it stop working; members keep their accounts.',
      tags: ['teams'],
      responses: { 204: { description: 'Removed' } },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'team:manage');
        await database.transaction(async (tx) => {
          if (!(await deleteTeamSso(tx, team.id))) {
            throw new TollgateError('sso_not_configured', 'this team has no single sign-on');
          }
          await appendAuditEntry(tx, ssoAudit(ctx, caller, team.id, 'team.sso_removed'));
        });
        ctx.status = 204;
      },
    }),
  ];
}

/**
 * Who may do what. Team roles grant sets of permissions; an admin of the team can add grants to or
 * revoke permissions from one member on top of the role. Operators (the installation's admins) hold
 * every permission, including the installation-wide ones no team role can have.
 *
 * docs/permissions.md renders this table; a test keeps the two in step.
 */

export const teamRoles = ['admin', 'developer', 'user'] as const;
export type TeamRole = (typeof teamRoles)[number];

/** Permissions a team member can hold, with what each allows. */
export const teamPermissions = {
  'team:read': 'see the team, its settings and its plan',
  'team:manage': 'rename the team, change its settings, enforce two-factor authentication, configure SSO',
  'members:read': 'list members and their roles',
  'members:invite': 'invite people to the team',
  'members:manage': 'remove members, change roles and per-member permissions, transfer ownership',
  'keys:read': "list the team's API keys (never their secrets)",
  'keys:write': 'create, rotate and revoke API keys',
  'usage:read': "read the team's metered usage",
  'alerts:write': "set and clear the team's usage alert thresholds",
  'billing:read': 'see subscriptions, invoices, credits and payment state',
  'billing:write': 'subscribe, change or cancel plans, buy credits, manage payment methods',
  'webhooks:read': 'list webhook endpoints and deliveries',
  'webhooks:write': 'add, change, remove and replay webhook endpoints',
  'plugins:install': "install and configure marketplace plugins on the team's APIs",
  'plugins:publish': 'publish plugins to the marketplace as this team',
  'audit:read': "read the team's audit log",
} as const;
export type TeamPermission = keyof typeof teamPermissions;

/** Permissions only operators hold: running the installation itself. */
export const operatorPermissions = {
  'apis:manage': 'register, change and delete the APIs the gateway serves',
  'plans:manage': 'create, change, archive and seed the plans of the catalog',
  'credits:manage': 'create and archive credit packs, grant credits to a team',
  'plugins:review': 'review and approve marketplace plugins',
  'billing:operate': 'close billing periods, mark invoices paid, set exchange rates, reconcile with Stripe',
  'users:manage': 'see and manage every account',
  'audit:verify': 'read and verify the whole audit log',
  'secrets:rotate': 'rotate the master key',
  'usage:report': "report metered usage of any team (POST /v1/usage), e.g. an upstream's storage_bytes",
} as const;
export type OperatorPermission = keyof typeof operatorPermissions;

export type Permission = TeamPermission | OperatorPermission;

const all = Object.keys(teamPermissions) as TeamPermission[];

export const rolePermissions: Record<TeamRole, readonly TeamPermission[]> = {
  admin: all,
  developer: [
    'team:read',
    'members:read',
    'keys:read',
    'keys:write',
    'usage:read',
    'webhooks:read',
    'webhooks:write',
    'plugins:install',
    'plugins:publish',
  ],
  user: ['team:read', 'members:read', 'keys:read', 'usage:read'],
};

export function isTeamPermission(value: string): value is TeamPermission {
  return Object.hasOwn(teamPermissions, value);
}

export function isTeamRole(value: string): value is TeamRole {
  return (teamRoles as readonly string[]).includes(value);
}

export interface Membership {
  role: TeamRole;
  /** Added on top of the role by a team admin. */
  grants?: readonly string[];
  /** Taken away from the role by a team admin; a revocation wins over a grant. */
  revocations?: readonly string[];
}

/** The permissions a member holds in their team: role, plus grants, minus revocations. */
export function effectivePermissions(membership: Membership): Set<TeamPermission> {
  const held = new Set<TeamPermission>(rolePermissions[membership.role]);
  for (const grant of membership.grants ?? []) if (isTeamPermission(grant)) held.add(grant);
  for (const revocation of membership.revocations ?? []) if (isTeamPermission(revocation)) held.delete(revocation);
  return held;
}

export interface Principal {
  userId: string;
  /** Operators hold every permission, in every team. */
  isOperator: boolean;
  /** The caller's membership in the team the request is about, if any. */
  membership?: Membership;
}

/** The one authorization check: may this principal use this permission (in its team)? */
export function can(principal: Principal, permission: Permission): boolean {
  if (principal.isOperator) return true;
  if (!principal.membership || !isTeamPermission(permission)) return false;
  return effectivePermissions(principal.membership).has(permission);
}

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  can,
  effectivePermissions,
  operatorPermissions,
  type Permission,
  type Principal,
  rolePermissions,
  teamPermissions,
  teamRoles,
} from './permissions.js';

const member = (role: 'admin' | 'developer' | 'user', extra: Partial<Principal['membership']> = {}): Principal => ({
  userId: 'u1',
  isOperator: false,
  membership: { role, ...extra },
});

describe('role permissions', () => {
  it.each<[Permission, boolean, boolean, boolean]>([
    // permission, admin, developer, user
    ['keys:write', true, true, false],
    ['keys:read', true, true, true],
    ['members:invite', true, false, false],
    ['members:manage', true, false, false],
    ['billing:read', true, false, false],
    ['billing:write', true, false, false],
    ['usage:read', true, true, true],
    ['team:manage', true, false, false],
    ['audit:read', true, false, false],
  ])('%s: admin %s, developer %s, user %s', (permission, admin, developer, user) => {
    expect(can(member('admin'), permission)).toBe(admin);
    expect(can(member('developer'), permission)).toBe(developer);
    expect(can(member('user'), permission)).toBe(user);
  });

  it('gives no team role an operator permission', () => {
    for (const role of teamRoles) {
      for (const permission of Object.keys(operatorPermissions) as Permission[]) {
        expect(can(member(role), permission)).toBe(false);
      }
    }
  });

  it('gives operators everything, in any team or none', () => {
    const operator: Principal = { userId: 'op', isOperator: true };
    for (const permission of [...Object.keys(teamPermissions), ...Object.keys(operatorPermissions)] as Permission[]) {
      expect(can(operator, permission)).toBe(true);
    }
  });

  it('gives nothing to someone outside the team', () => {
    expect(can({ userId: 'x', isOperator: false }, 'keys:read')).toBe(false);
  });
});

describe('per-member grants and revocations', () => {
  it('adds grants on top of the role and lets a revocation win', () => {
    const held = effectivePermissions({
      role: 'user',
      grants: ['billing:read', 'keys:write'],
      revocations: ['keys:write', 'usage:read'],
    });
    expect(held.has('billing:read')).toBe(true);
    expect(held.has('keys:write')).toBe(false);
    expect(held.has('usage:read')).toBe(false);
  });

  it('ignores unknown or operator-only grants', () => {
    const held = effectivePermissions({ role: 'user', grants: ['apis:manage', 'everything'] });
    expect([...held].sort()).toEqual([...rolePermissions.user].sort());
  });
});

describe('docs/permissions.md', () => {
  it('lists every permission and every role’s column', async () => {
    const docs = await readFile(new URL('../../../docs/permissions.md', import.meta.url), 'utf8');
    for (const permission of [...Object.keys(teamPermissions), ...Object.keys(operatorPermissions)]) {
      const row = docs.split('\n').find((line) => line.startsWith(`| \`${permission}\``));
      expect(row, `docs/permissions.md has no row for ${permission}`).toBeDefined();
      if (permission in teamPermissions) {
        const cells = (row ?? '').split('|').map((cell) => cell.trim());
        // | permission | what | admin | developer | user |
        const marks = teamRoles.map((role) =>
          (rolePermissions[role] as readonly string[]).includes(permission) ? 'yes' : 'no',
        );
        expect(cells.slice(3, 6), `row for ${permission}`).toEqual(marks);
      }
    }
  });
});

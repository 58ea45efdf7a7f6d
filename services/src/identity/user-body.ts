import { z } from 'zod';
import type { User } from './users.js';

/** How every route shows an account. */
export const userSchema = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  installation_role: z.enum(['admin', 'member']),
  email_verified: z.boolean(),
  created_at: z.string(),
});

export function userBody(user: User): z.infer<typeof userSchema> {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    installation_role: user.installationRole,
    email_verified: user.emailVerifiedAt !== null,
    created_at: user.createdAt.toISOString(),
  };
}

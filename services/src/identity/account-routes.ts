import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry, emailPseudonym, recordAudit, userLabel } from '../audit/index.js';
import type { CounterStore } from '../counters/counter-store.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { linkBase } from '../http/link-base.js';
import { defineRoute } from '../http/route.js';
import type { Logger } from '../logging/logger.js';
import type { Mailer, OutgoingMail } from '../mail/mailer.js';
import type { Database } from '../storage/database.js';
import { guardAccountRequest } from './abuse-limits.js';
import {
  accountTokenLifetimeMs,
  findAccountToken,
  issueAccountToken,
  revokeAccountTokens,
  useAccountToken,
} from './account-tokens.js';
import { authenticate, authenticateSession, clientOf } from './authenticate.js';
import { hashPassword, passwordProblems, verifyPassword } from './passwords.js';
import type { RefreshTokenStore } from './refresh-token-store.js';
import { revokeAllSessions } from './sessions.js';
import { userBody, userSchema } from './user-body.js';
import { createUserWithPassword, findLoginByEmail, findUserById, normalizeEmail } from './users.js';

export interface AccountRouteOptions {
  database: Database;
  /** Key of the email pseudonyms in audit entries (emailPseudonym). */
  auditKey: Buffer;
  mailer: Mailer;
  /** HS256 key for access tokens, derived from the master key. */
  signingKey: Buffer;
  /**
   * TOLLGATE_PUBLIC_URL, the base of the links in emails. Unset: the address and port the request
   * reached this server on (never the Host header, which the sender chooses: a reset link pointing
   * at an attacker's host would hand them the token).
   */
  publicUrl: string | undefined;
  /** Where a failed notice (sent after the change it reports was made) is logged. */
  logger?: Logger;
  /**
   * With it, sign-ups and password-reset requests count against the per-address limit of
   * abuse-limits.ts (each one sends an email, so each one can be used to flood an inbox).
   */
  counters?: CounterStore;
  /** Where refresh tokens live: a password reset forgets those of every session it ends. */
  refreshTokens: RefreshTokenStore;
}

/** An address we can mail: zod's email shape (which also keeps out quotes, spaces and lists). */
const newEmailSchema = z
  .string()
  .trim()
  .max(320)
  .pipe(z.email({ error: 'must be an email address, like ada@example.com' }));
/** Only looked up, never stored: as loose as the login's, so any existing address can ask. */
const knownEmailSchema = z.string().trim().min(3).max(320);
const newPasswordSchema = z.string().min(1).max(1024);
const tokenSchema = z.string().min(1).max(200);

const verificationSentSchema = z.object({
  status: z.literal('verification_sent'),
  email: z.string(),
});

const tokenInvalid = () =>
  new TollgateError('token_invalid', 'this token is invalid, expired or already used', {
    hint: 'ask for a new one: each link works once, and only the newest one works',
  });

/** The validation error createUserWithPassword gives, raised before anything is looked up or written. */
function checkPasswordPolicy(password: string, context: { email: string; name?: string | null | undefined }): void {
  const problems = passwordProblems(password, {
    email: context.email,
    ...(context.name ? { name: context.name } : {}),
  });
  if (problems.length > 0) {
    throw new TollgateError('validation_failed', `password: ${problems[0]}`, {
      details: { issues: problems.map((message) => ({ path: 'password', message })) },
    });
  }
}

const hours = (ms: number) => Math.round(ms / (60 * 60 * 1000));

function mail(to: string, purpose: string, subject: string, lines: string[]): OutgoingMail {
  return {
    to,
    subject,
    text: `${lines.join('\n')}\n\n-- \nTollgate\n`,
    // RFC 3834: automatic mail, so auto-responders do not answer it.
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Tollgate-Purpose': purpose },
  };
}

// The emails never include text a sender chose (such as the name given at sign-up): whoever signs up
// with someone else's address must not be able to write to that person through us.

function verificationMail(to: string, base: string, token: string): OutgoingMail {
  return mail(to, 'verify_email', 'Verify your email address for Tollgate', [
    'Open this link to verify your email address:',
    '',
    `${base}/v1/auth/verify-email?token=${token}`,
    '',
    `Or run: tollgate account verify ${token}`,
    '',
    `The link works once and expires in ${hours(accountTokenLifetimeMs.verify_email)} hours.`,
    'If you did not sign up for Tollgate, ignore this email: nothing happens without the link.',
  ]);
}

function signupExistingMail(to: string): OutgoingMail {
  return mail(to, 'signup_existing_email', 'Someone tried to sign up with your email address', [
    'Someone tried to create a Tollgate account with this email address, which already has an account.',
    'Nothing was changed.',
    '',
    'If it was you, log in (tollgate login), or reset your password if you forgot it',
    '(tollgate account password --email <this address>).',
    '',
    'If it was not you, you can ignore this email: your account is safe.',
  ]);
}

function resetMail(to: string, token: string): OutgoingMail {
  return mail(to, 'reset_password', 'Reset your Tollgate password', [
    'Someone (hopefully you) asked to reset the password of your Tollgate account.',
    '',
    'To choose a new password, run:',
    '',
    `  tollgate account password --token ${token}`,
    '',
    `or send the token to POST /v1/auth/password-reset/confirm. It works once and expires in ${hours(accountTokenLifetimeMs.reset_password)} hour.`,
    'Resetting the password signs you out everywhere.',
    '',
    'If you did not ask for this, ignore this email: your password stays as it is.',
  ]);
}

function passwordChangedMail(to: string): OutgoingMail {
  return mail(to, 'password_changed', 'Your Tollgate password was changed', [
    'The password of your Tollgate account was just reset, and every session was signed out.',
    'Personal access tokens keep working: see them with `tollgate tokens list`.',
    '',
    'If this was not you, reset your password again at once, revoke any token you do not recognise',
    '(tollgate tokens revoke <id>) and tell your Tollgate operator.',
  ]);
}

function changeEmailMail(to: string, token: string): OutgoingMail {
  return mail(to, 'change_email', 'Confirm your new email address for Tollgate', [
    'A Tollgate account asked to use this email address from now on.',
    '',
    'To confirm, signed in to that account, run:',
    '',
    `  tollgate account email --token ${token}`,
    '',
    `or send the token to POST /v1/me/email/confirm. It works once and expires in ${hours(accountTokenLifetimeMs.change_email)} hours.`,
    'If you did not ask for this, ignore this email: nothing changes without the token.',
  ]);
}

function changeEmailTakenMail(to: string): OutgoingMail {
  return mail(to, 'change_email_taken', 'Someone tried to move a Tollgate account to your email address', [
    'A Tollgate account asked to use this email address, but it already belongs to an account.',
    'Nothing was changed.',
    '',
    'If it was you, sign in to the account that already uses this address instead.',
  ]);
}

function emailChangedMail(to: string, newEmail: string): OutgoingMail {
  return mail(to, 'email_changed', 'The email address of your Tollgate account was changed', [
    `Your Tollgate account now uses ${newEmail}; this address (${to}) no longer receives its email.`,
    '',
    'If this was not you, tell your Tollgate operator at once.',
  ]);
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === '23505';
}

/**
 * Sign-up, email verification, password reset and profile changes. Answers never reveal whether an
 * email address has an account; every change is audited in its own transaction.
 */
export function accountRoutes(options: AccountRouteOptions) {
  const { database, mailer, signingKey, publicUrl, logger, counters, refreshTokens } = options;

  /** For notices about a change already made: failing to send one must not report the change as failed. */
  async function sendNotice(message: OutgoingMail): Promise<void> {
    try {
      await mailer.send(message);
    } catch (error) {
      logger?.warn({ err: error, purpose: message.headers?.['X-Tollgate-Purpose'] }, 'could not send a notice');
    }
  }

  async function verifyEmail(ctx: Context, token: string): Promise<void> {
    const client = clientOf(ctx);
    const now = new Date();
    const verified = await database.transaction(async (tx) => {
      const grant = await useAccountToken(tx, { token, purpose: 'verify_email', now });
      if (!grant) return undefined;
      const updated = await tx.query<{ email: string }>(
        `UPDATE users SET email_verified_at = coalesce(email_verified_at, $2), updated_at = $2
         WHERE id = $1 AND deleted_at IS NULL RETURNING email`,
        [grant.userId, now],
      );
      const email = updated.rows[0]?.email;
      if (email === undefined) return undefined;
      await appendAuditEntry(tx, {
        actorUserId: grant.userId,
        actorLabel: userLabel(grant.userId),
        action: 'user.email_verified',
        outcome: 'success',
        targetType: 'user',
        targetId: grant.userId,
        ip: client.ip,
        userAgent: client.userAgent,
        requestId: ctx.state.requestId,
      });
      return { email };
    });
    if (!verified) throw tokenInvalid();
    ctx.body = { status: 'email_verified', email: verified.email };
  }

  const emailVerifiedSchema = z.object({ status: z.literal('email_verified'), email: z.string() });

  return [
    defineRoute({
      method: 'post',
      path: '/v1/auth/signup',
      operationId: 'signup',
      summary: 'Create an account with email and password',
      description:
        'Always answers 202 `verification_sent`, whether or not the email already has an account (its owner is told by email instead), so the answer reveals nothing. A password that breaks the policy is 400 `validation_failed` naming the problem.',
      tags: ['auth'],
      body: z.object({
        email: newEmailSchema,
        password: newPasswordSchema,
        name: z.string().trim().min(1).max(200).optional(),
      }),
      responses: { 202: { description: 'A verification email is on its way', schema: verificationSentSchema } },
      handler: async (ctx, { body }) => {
        const client = clientOf(ctx);
        if (counters) await guardAccountRequest(counters, { ip: client.ip });
        const email = normalizeEmail(body.email);
        checkPasswordPolicy(body.password, { email, name: body.name });
        const base = linkBase(ctx, publicUrl);
        const audit = { ip: client.ip, userAgent: client.userAgent, requestId: ctx.state.requestId };

        // Both branches hash the password, write one audit entry and send one email, so the time
        // the answer takes does not tell a new address from a registered one either.
        let existing = await findLoginByEmail(database, email);
        if (!existing) {
          try {
            const created = await database.transaction(async (tx) => {
              const user = await createUserWithPassword(tx, {
                email,
                password: body.password,
                ...(body.name ? { name: body.name } : {}),
              });
              const issued = await issueAccountToken(tx, { userId: user.id, purpose: 'verify_email' });
              await appendAuditEntry(tx, {
                actorUserId: user.id,
                actorLabel: userLabel(user.id),
                action: 'user.signed_up',
                outcome: 'success',
                targetType: 'user',
                targetId: user.id,
                ...audit,
              });
              return { user, token: issued.token };
            });
            await mailer.send(verificationMail(created.user.email, base, created.token));
          } catch (error) {
            // Someone signed up with this address between the lookup and the insert.
            if (!(error instanceof TollgateError && error.code === 'email_taken')) throw error;
            existing = await findLoginByEmail(database, email);
            if (!existing) throw error;
          }
        }
        if (existing) {
          await hashPassword(body.password);
          await recordAudit(database, {
            actorLabel: 'anonymous',
            action: 'user.signup_existing_email',
            outcome: 'failure',
            targetType: 'user',
            targetId: existing.user.id,
            ...audit,
          });
          await mailer.send(signupExistingMail(existing.user.email));
        }
        ctx.status = 202;
        ctx.body = { status: 'verification_sent', email };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/auth/verify-email',
      operationId: 'verifyEmailLink',
      summary: 'Verify an email address from the link in the email (?token=)',
      description:
        'The link mailed at sign-up. A token that is unknown, expired or already used is 400 `token_invalid`.',
      tags: ['auth'],
      responses: { 200: { description: 'The address is verified', schema: emailVerifiedSchema } },
      handler: async (ctx) => {
        // The token is in the URL: keep it out of caches and out of the Referer of any next page.
        ctx.set('Cache-Control', 'no-store');
        ctx.set('Referrer-Policy', 'no-referrer');
        const query = z.object({ token: tokenSchema }).safeParse(ctx.query);
        if (!query.success) {
          throw new TollgateError('validation_failed', 'token: pass the token from the email as ?token=', {
            details: { issues: [{ path: 'token', message: 'required, one value' }] },
          });
        }
        await verifyEmail(ctx, query.data.token);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/verify-email',
      operationId: 'verifyEmail',
      summary: 'Verify an email address with the token from the email',
      description: 'A token that is unknown, expired or already used is 400 `token_invalid`.',
      tags: ['auth'],
      body: z.object({ token: tokenSchema }),
      responses: { 200: { description: 'The address is verified', schema: emailVerifiedSchema } },
      handler: async (ctx, { body }) => {
        ctx.set('Cache-Control', 'no-store');
        await verifyEmail(ctx, body.token);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/verify-email/resend',
      operationId: 'resendVerificationEmail',
      summary: 'Send a new verification email to the signed-in account',
      description:
        'Earlier verification links stop working. An address that is already verified is 409 `email_already_verified`.',
      tags: ['auth'],
      responses: { 202: { description: 'A verification email is on its way', schema: verificationSentSchema } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        if (caller.user.emailVerifiedAt) {
          throw new TollgateError('email_already_verified', `${caller.user.email} is already verified`);
        }
        const client = clientOf(ctx);
        const token = await database.transaction(async (tx) => {
          const issued = await issueAccountToken(tx, { userId: caller.user.id, purpose: 'verify_email' });
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'user.email_verification_requested',
            outcome: 'success',
            targetType: 'user',
            targetId: caller.user.id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
          });
          return issued.token;
        });
        await mailer.send(verificationMail(caller.user.email, linkBase(ctx, publicUrl), token));
        ctx.status = 202;
        ctx.body = { status: 'verification_sent', email: caller.user.email };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/password-reset',
      operationId: 'requestPasswordReset',
      summary: 'Email a password-reset token',
      description:
        'Always answers 202, whether or not the email has an account; only an existing account is sent a token (valid one hour, earlier ones stop working).',
      tags: ['auth'],
      body: z.object({ email: knownEmailSchema }),
      responses: {
        202: {
          description: 'If the address has an account, a reset email is on its way',
          schema: z.object({ status: z.literal('reset_requested'), email: z.string() }),
        },
      },
      handler: async (ctx, { body }) => {
        const client = clientOf(ctx);
        if (counters) await guardAccountRequest(counters, { ip: client.ip });
        const email = normalizeEmail(body.email);
        const audit = { ip: client.ip, userAgent: client.userAgent, requestId: ctx.state.requestId };
        const found = await findLoginByEmail(database, email);
        if (found) {
          const user = found.user;
          const token = await database.transaction(async (tx) => {
            const issued = await issueAccountToken(tx, { userId: user.id, purpose: 'reset_password' });
            await appendAuditEntry(tx, {
              actorUserId: user.id,
              actorLabel: 'anonymous',
              action: 'user.password_reset_requested',
              outcome: 'success',
              targetType: 'user',
              targetId: user.id,
              ...audit,
            });
            return issued.token;
          });
          await mailer.send(resetMail(user.email, token));
        } else {
          await recordAudit(database, {
            actorLabel: 'anonymous',
            action: 'user.password_reset_requested',
            outcome: 'failure',
            targetType: 'email',
            targetId: emailPseudonym(options.auditKey, email),
            ...audit,
            details: { reason: 'unknown_email' },
          });
        }
        ctx.status = 202;
        ctx.body = { status: 'reset_requested', email };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/password-reset/confirm',
      operationId: 'confirmPasswordReset',
      summary: 'Set a new password with a reset token',
      description:
        'Ends every session of the account and marks its email verified (the token proved the inbox). A token that is unknown, expired or already used is 400 `token_invalid`; a password that breaks the policy is 400 `validation_failed` and leaves the token usable.',
      tags: ['auth'],
      body: z.object({ token: tokenSchema, password: newPasswordSchema }),
      responses: {
        200: {
          description: 'The password is changed; log in with it',
          schema: z.object({
            status: z.literal('password_reset'),
            sessions_revoked: z.number().int().describe('Sessions that were signed out'),
          }),
        },
      },
      handler: async (ctx, { body }) => {
        ctx.set('Cache-Control', 'no-store');
        const grant = await findAccountToken(database, { token: body.token, purpose: 'reset_password' });
        const user = grant ? await findUserById(database, grant.userId) : undefined;
        if (!user) throw tokenInvalid();
        checkPasswordPolicy(body.password, { email: user.email, name: user.name });
        // Hashed before the transaction: 32 MiB of scrypt should not hold a connection.
        const passwordHash = await hashPassword(body.password);
        const client = clientOf(ctx);
        const now = new Date();
        const revoked = await database.transaction(async (tx) => {
          const used = await useAccountToken(tx, { token: body.token, purpose: 'reset_password', now });
          if (used?.userId !== user.id) return undefined;
          await tx.query(
            `UPDATE users SET password_hash = $2, email_verified_at = coalesce(email_verified_at, $3), updated_at = $3
             WHERE id = $1`,
            [user.id, passwordHash, now],
          );
          const sessions = await revokeAllSessions(tx, { userId: user.id, refreshTokens, now });
          // A change-email link asked for with the old password must not outlive it.
          await revokeAccountTokens(tx, { userId: user.id, purposes: ['reset_password', 'change_email'] });
          await appendAuditEntry(tx, {
            actorUserId: user.id,
            actorLabel: userLabel(user.id),
            action: 'user.password_reset',
            outcome: 'success',
            targetType: 'user',
            targetId: user.id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
            details: { sessions_revoked: sessions },
          });
          return sessions;
        });
        if (revoked === undefined) throw tokenInvalid();
        await sendNotice(passwordChangedMail(user.email));
        ctx.body = { status: 'password_reset', sessions_revoked: revoked };
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/v1/me',
      operationId: 'updateMe',
      summary: "Change the signed-in account's profile",
      tags: ['auth'],
      body: z.object({ name: z.string().trim().min(1).max(200).nullable().describe('null clears it') }),
      responses: { 200: { description: 'The account', schema: userSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const client = clientOf(ctx);
        await database.transaction(async (tx) => {
          await tx.query('UPDATE users SET name = $2, updated_at = now() WHERE id = $1', [caller.user.id, body.name]);
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'user.profile_updated',
            outcome: 'success',
            targetType: 'user',
            targetId: caller.user.id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
            details: { fields: ['name'] },
          });
        });
        ctx.body = userBody({ ...caller.user, name: body.name });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/email',
      operationId: 'requestEmailChange',
      summary: 'Ask to change the email address of the signed-in account',
      description:
        'Needs the current password (403 `reauthentication_failed` otherwise). Mails a confirmation token (valid 24 hours) to the new address; always answers 202, so the answer does not tell whether another account uses that address.',
      tags: ['auth'],
      body: z.object({ new_email: newEmailSchema, password: z.string().min(1).max(1024) }),
      responses: {
        202: {
          description: 'A confirmation email is on its way to the new address',
          schema: z.object({ status: z.literal('confirmation_sent'), email: z.string() }),
        },
      },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(
          ctx,
          { database, signingKey },
          { action: 'changing the email address' },
        );
        const client = clientOf(ctx);
        const audit = {
          actorUserId: caller.user.id,
          actorLabel: userLabel(caller.user.id),
          targetType: 'user',
          targetId: caller.user.id,
          ip: client.ip,
          userAgent: client.userAgent,
          requestId: ctx.state.requestId,
        };
        const login = await findLoginByEmail(database, caller.user.email);
        const passwordHash = login?.user.id === caller.user.id ? login.passwordHash : null;
        if (!passwordHash || !(await verifyPassword(body.password, passwordHash)).ok) {
          await recordAudit(database, {
            ...audit,
            action: 'user.reauthentication_failed',
            outcome: 'failure',
            details: { for: 'email_change' },
          });
          throw new TollgateError(
            'reauthentication_failed',
            passwordHash ? 'the password is wrong' : 'this account has no password to confirm the change with',
            { hint: passwordHash ? 'enter your current password' : 'set one with a password reset first' },
          );
        }
        const newEmail = normalizeEmail(body.new_email);
        if (newEmail.toLowerCase() === caller.user.email.toLowerCase()) {
          throw new TollgateError('validation_failed', 'new_email: that is already your email address', {
            details: { issues: [{ path: 'new_email', message: 'that is already your email address' }] },
          });
        }
        const taken = await findLoginByEmail(database, newEmail);
        if (taken) {
          await recordAudit(database, {
            ...audit,
            action: 'user.email_change_requested',
            outcome: 'failure',
            details: { new_email: emailPseudonym(options.auditKey, newEmail), reason: 'email_taken' },
          });
          await mailer.send(changeEmailTakenMail(taken.user.email));
        } else {
          const token = await database.transaction(async (tx) => {
            const issued = await issueAccountToken(tx, { userId: caller.user.id, purpose: 'change_email', newEmail });
            await appendAuditEntry(tx, {
              ...audit,
              action: 'user.email_change_requested',
              outcome: 'success',
              details: { new_email: emailPseudonym(options.auditKey, newEmail) },
            });
            return issued.token;
          });
          await mailer.send(changeEmailMail(newEmail, token));
        }
        ctx.status = 202;
        ctx.body = { status: 'confirmation_sent', email: newEmail };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/email/confirm',
      operationId: 'confirmEmailChange',
      summary: 'Switch to the new email address with the token mailed to it',
      description:
        'Signed in as the account that asked. The new address counts as verified; the old one is told. A token that is unknown, expired, already used or of another account is 400 `token_invalid`; an address another account took meanwhile is 409 `email_taken`.',
      tags: ['auth'],
      body: z.object({ token: tokenSchema }),
      responses: { 200: { description: 'The account, with its new address', schema: userSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(
          ctx,
          { database, signingKey },
          { action: 'changing the email address' },
        );
        const client = clientOf(ctx);
        const now = new Date();
        const oldEmail = caller.user.email;
        const newEmail = await database.transaction(async (tx) => {
          const grant = await useAccountToken(tx, { token: body.token, purpose: 'change_email', now });
          // Throwing rolls back: another account's token must stay unused.
          if (!grant?.newEmail || grant.userId !== caller.user.id) throw tokenInvalid();
          try {
            await tx.query('UPDATE users SET email = $2, email_verified_at = $3, updated_at = $3 WHERE id = $1', [
              caller.user.id,
              grant.newEmail,
              now,
            ]);
          } catch (error) {
            if (!isUniqueViolation(error)) throw error;
            throw new TollgateError('email_taken', 'another account uses this email address now', {
              hint: 'ask for the change again with another address',
            });
          }
          // Links mailed to the old address (verification, reset) must stop working.
          await revokeAccountTokens(tx, {
            userId: caller.user.id,
            purposes: ['verify_email', 'reset_password', 'change_email'],
          });
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'user.email_changed',
            outcome: 'success',
            targetType: 'user',
            targetId: caller.user.id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
            details: { from: oldEmail, to: grant.newEmail },
          });
          return grant.newEmail;
        });
        await sendNotice(emailChangedMail(oldEmail, newEmail));
        ctx.body = userBody({ ...caller.user, email: newEmail, emailVerifiedAt: now });
      },
    }),
  ];
}

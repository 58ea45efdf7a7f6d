import type { Context } from 'koa';
import { z } from 'zod';
import { type AuditEntryInput, appendAuditEntry, userLabel } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import type { Mailer } from '../mail/mailer.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import { parsePhoneNumber } from '../sms/phone-number.js';
import type { SmsSender } from '../sms/sms-sender.js';
import type { Database } from '../storage/database.js';
import { tokensBody, tokensSchema } from './auth-routes.js';
import { authenticate, authenticateSession, type Caller, clientOf } from './authenticate.js';
import { verifyPassword } from './passwords.js';
import type { RefreshTokenStore } from './refresh-token-store.js';
import { createSession } from './sessions.js';
import { newEmailCode, newSmsCode } from './two-factor.js';
import {
  abandonSmsEnrolment,
  assertSecondFactorNotThrottled,
  type CodeFailure,
  challengeDeadReason,
  challengeLifetimeMs,
  confirmSmsEnrolment,
  confirmTotpEnrolment,
  countChallengeAttempt,
  countSmsSend,
  disableSms,
  disableTwoFactor,
  findLoginChallenge,
  loadTwoFactorSettings,
  loginMethods,
  markChallengeUsed,
  maxChallengeAttempts,
  maxEmailCodesPerChallenge,
  maxSmsCodesPerChallenge,
  openSmsPhone,
  recordSecondFactorFailure,
  replaceRecoveryCodes,
  type SecondFactorMethod,
  setEmailCodes,
  smsEnrolmentLifetimeMs,
  startSmsEnrolment,
  startTotpEnrolment,
  storeChallengeEmailCode,
  storeChallengeSmsCode,
  type TwoFactorSettings,
  twoFactorStatus,
  useSecondFactor,
} from './two-factor-store.js';
import { findLoginByEmail, findUserById } from './users.js';

export interface TwoFactorRouteOptions {
  database: Database;
  /** HS256 key for access tokens, derived from the master key. */
  signingKey: Buffer;
  /** Where the refresh token of a completed login is stored. */
  refreshTokens: RefreshTokenStore;
  /** Seals TOTP seeds at rest. */
  keyring: MasterKeyring;
  /** Sends the login codes of accounts that use email as a second factor. */
  mailer: Mailer;
  /** Sends SMS codes; without it, adding a phone number is refused with `sms_not_configured`. */
  sms?: SmsSender | undefined;
}

const methodSchema = z.enum(['totp', 'recovery_code', 'email', 'sms']);
const codeSchema = z
  .string()
  .min(1)
  .max(64)
  .describe(
    '6 digits from the authenticator app (or the email or text message), or a recovery code such as k7m2q-x9hfa',
  );

const statusSchema = z.object({
  totp: z
    .enum(['off', 'pending', 'enabled'])
    .describe('`pending`: an app was given a secret, but no code from it confirmed the setup yet'),
  totp_confirmed_at: z.string().nullable(),
  email_codes: z.boolean(),
  recovery_codes_remaining: z.number().int(),
  sms: z
    .enum(['off', 'pending', 'enabled'])
    .describe('`pending`: a code was sent to the phone number, but has not come back to confirm it yet'),
  sms_phone: z.string().nullable().describe('The phone number of SMS codes, partly hidden: +1 *** *** 4567'),
  methods: z.array(methodSchema).describe('What a login asks for after the password; empty: the password alone'),
});

const recoveryCodesSchema = z.object({
  recovery_codes: z.array(z.string()).describe('Shown this once: each works once, in place of a code from the app'),
});

function statusBody(settings: TwoFactorSettings | undefined): z.infer<typeof statusSchema> {
  const status = twoFactorStatus(settings);
  return {
    totp: status.totp,
    totp_confirmed_at: status.totpConfirmedAt?.toISOString() ?? null,
    email_codes: status.emailCodes,
    recovery_codes_remaining: status.recoveryCodesRemaining,
    sms: status.sms,
    sms_phone: status.smsPhone,
    methods: loginMethods(settings),
  };
}

/** The fields every audit entry of a signed-in caller shares. */
function callerAudit(ctx: Context, caller: Caller): Omit<AuditEntryInput, 'action' | 'outcome'> {
  const client = clientOf(ctx);
  return {
    actorUserId: caller.user.id,
    actorLabel: userLabel(caller.user.id),
    targetType: 'user',
    targetId: caller.user.id,
    ip: client.ip,
    userAgent: client.userAgent,
    requestId: ctx.state.requestId,
  };
}

function codeFailureMessage(reason: CodeFailure): string {
  return reason === 'replayed'
    ? 'this code was already used: wait for the next one from your authenticator app'
    : 'the code is wrong';
}

/** `a***@example.com`: enough for the user to recognise the address, not enough to harvest it. */
function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return at < 1 ? '***' : `${email.slice(0, 1)}***${email.slice(at)}`;
}

const challengeExpired = (reason: string) =>
  new TollgateError('two_factor_challenge_expired', reason, { hint: 'log in again with your email and password' });

type Failed = { ok: false; error: TollgateError };

/** Changing the second factors needs a session: a personal access token must not remove or replace them. */
const sessionOnly = { action: 'changing two-factor authentication' };

/**
 * Two-factor authentication: setting up an authenticator app, recovery codes, email codes, and the
 * second step of a login (the first, the password, is POST /v1/auth/login in auth-routes.ts).
 * Failures that must be recorded (a wrong code counts against the challenge and the account) commit
 * their writes and audit entry first, then answer the error.
 */
export function twoFactorRoutes(options: TwoFactorRouteOptions) {
  const { database, signingKey, keyring, mailer } = options;

  function smsSender(): SmsSender {
    if (options.sms) return options.sms;
    throw new TollgateError('sms_not_configured', 'this installation cannot send text messages', {
      hint: 'an operator sets TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM; or use another second factor',
    });
  }

  /** Counts a wrong password or code given to confirm a change while signed in, and audits it. */
  async function refuseSignedIn(
    ctx: Context,
    caller: Caller,
    failure: { operation: string; factor: 'password' | SecondFactorMethod; reason: CodeFailure | 'wrong' },
  ): Promise<Failed> {
    await database.transaction(async (tx) => {
      await recordSecondFactorFailure(tx, caller.user.id);
      await appendAuditEntry(tx, {
        ...callerAudit(ctx, caller),
        action: failure.factor === 'password' ? 'auth.reauthentication_failed' : 'auth.two_factor_failed',
        outcome: 'failure',
        details: { operation: failure.operation, method: failure.factor, reason: failure.reason },
      });
    });
    const message = failure.factor === 'password' ? 'the password is wrong' : codeFailureMessage(failure.reason);
    return { ok: false, error: new TollgateError('reauthentication_failed', message) };
  }

  return [
    defineRoute({
      method: 'get',
      path: '/v1/me/2fa',
      operationId: 'getTwoFactorStatus',
      summary: 'Which second factors the signed-in account uses',
      tags: ['two-factor'],
      responses: { 200: { description: 'The settings', schema: statusSchema } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        ctx.body = statusBody(await loadTwoFactorSettings(database, caller.user.id));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/2fa/totp',
      operationId: 'startTotpEnrolment',
      summary: 'Start setting up an authenticator app',
      description:
        'Answers a new secret (the only time it is shown) and its otpauth:// URI for a QR code. Nothing changes at ' +
        'login until POST /v1/me/2fa/totp/confirm with a code from the app. Starting again replaces an unconfirmed ' +
        'secret; with an app already confirmed the answer is 409 `two_factor_already_enabled`.',
      tags: ['two-factor'],
      responses: {
        200: {
          description: 'The secret to add to the app',
          schema: z.object({
            secret: z.string().describe('Base32, for typing into the app by hand'),
            otpauth_uri: z.string().describe('otpauth://totp/... for a QR code'),
          }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const started = await database.transaction((tx) =>
          startTotpEnrolment(tx, { userId: caller.user.id, accountName: caller.user.email, keyring }),
        );
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { secret: started.secret, otpauth_uri: started.uri };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/2fa/totp/confirm',
      operationId: 'confirmTotpEnrolment',
      summary: 'Turn on two-factor authentication with a first code from the app',
      description:
        'Answers 10 recovery codes, shown this once. From now on a login asks for a code after the password. ' +
        'A code that does not match the secret is 400 `validation_failed`.',
      tags: ['two-factor'],
      body: z.object({ code: codeSchema }),
      responses: { 200: { description: 'Two-factor authentication is on', schema: recoveryCodesSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const confirmed = await database.transaction(async (tx) => {
          const outcome = await confirmTotpEnrolment(tx, { userId: caller.user.id, code: body.code, keyring });
          if (outcome.ok) {
            await appendAuditEntry(tx, {
              ...callerAudit(ctx, caller),
              action: 'user.two_factor_enabled',
              outcome: 'success',
              details: { method: 'totp' },
            });
          }
          return outcome;
        });
        if (!confirmed.ok) {
          // Nothing is at stake yet (the caller was just given the secret), so no attempt is counted.
          throw new TollgateError('validation_failed', 'code: the code does not match the new secret', {
            hint: 'check the app shows Tollgate and that the phone clock is right, then try the next code',
            details: { issues: [{ path: 'code', message: 'does not match the new secret' }] },
          });
        }
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { recovery_codes: confirmed.recoveryCodes };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/me/2fa',
      operationId: 'disableTwoFactor',
      summary: 'Turn two-factor authentication off',
      description:
        'Needs the password and, when an authenticator app is set up, a current code from it or a recovery code: ' +
        'a stolen session alone cannot remove the second factor. A wrong one is 403 `reauthentication_failed`.',
      tags: ['two-factor'],
      body: z.object({ password: z.string().min(1).max(1024), code: codeSchema.optional() }),
      responses: { 204: { description: 'Off: the password alone opens a session again' } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const userId = caller.user.id;
        const current = await loadTwoFactorSettings(database, userId);
        if (!current) throw notEnabled();
        if (current.totpConfirmedAt && body.code === undefined) {
          throw new TollgateError('validation_failed', 'code: a code from your authenticator app is required', {
            hint: 'or give one of your recovery codes',
            details: { issues: [{ path: 'code', message: 'required' }] },
          });
        }
        await assertSecondFactorNotThrottled(database, userId);
        const login = await findLoginByEmail(database, caller.user.email);
        if (!login?.passwordHash) {
          throw new TollgateError('reauthentication_failed', 'this account has no password to confirm the change', {
            hint: 'set a password first',
          });
        }
        if (!(await verifyPassword(body.password, login.passwordHash)).ok) {
          throw (await refuseSignedIn(ctx, caller, { operation: 'disable', factor: 'password', reason: 'wrong' }))
            .error;
        }
        const outcome = await database.transaction(async (tx) => {
          const settings = await loadTwoFactorSettings(tx, userId, { forUpdate: true });
          if (!settings) throw notEnabled();
          let method: SecondFactorMethod | undefined;
          if (settings.totpConfirmedAt) {
            const check = await useSecondFactor(tx, settings, {
              code: body.code ?? '',
              allowed: ['totp', 'recovery_code'],
              keyring,
            });
            if (!check.ok) return check;
            method = check.method;
          }
          await disableTwoFactor(tx, userId);
          await appendAuditEntry(tx, {
            ...callerAudit(ctx, caller),
            action: 'user.two_factor_disabled',
            outcome: 'success',
            details: { ...(method ? { method } : {}) },
          });
          return { ok: true } as const;
        });
        if (!outcome.ok) {
          const { error } = await refuseSignedIn(ctx, caller, {
            operation: 'disable',
            factor: outcome.method,
            reason: outcome.reason,
          });
          throw error;
        }
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/2fa/recovery-codes',
      operationId: 'replaceRecoveryCodes',
      summary: 'Replace the recovery codes',
      description:
        'Needs a current code from the authenticator app (not a recovery code). The unused codes stop working; ' +
        'the new ones are shown this once.',
      tags: ['two-factor'],
      body: z.object({ code: codeSchema }),
      responses: { 200: { description: 'The new recovery codes', schema: recoveryCodesSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const userId = caller.user.id;
        await assertSecondFactorNotThrottled(database, userId);
        const outcome = await database.transaction(async (tx) => {
          const settings = await loadTwoFactorSettings(tx, userId, { forUpdate: true });
          if (!settings?.totpConfirmedAt) throw notEnabled();
          const check = await useSecondFactor(tx, settings, { code: body.code, allowed: ['totp'], keyring });
          if (!check.ok) return check;
          const codes = await replaceRecoveryCodes(tx, userId);
          await appendAuditEntry(tx, {
            ...callerAudit(ctx, caller),
            action: 'user.two_factor_recovery_codes_replaced',
            outcome: 'success',
          });
          return { ok: true, codes } as const;
        });
        if (!outcome.ok) {
          const { error } = await refuseSignedIn(ctx, caller, {
            operation: 'recovery_codes',
            factor: outcome.method,
            reason: outcome.reason,
          });
          throw error;
        }
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { recovery_codes: outcome.codes };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/2fa/email',
      operationId: 'setEmailCodes',
      summary: 'Use codes sent by email as a second factor, or stop',
      description:
        'Turning them on needs a verified email address (409 `two_factor_email_unverified`). Turning them off ' +
        'when no authenticator app nor SMS codes are set up turns two-factor authentication off, so it needs the password.',
      tags: ['two-factor'],
      body: z.object({ enabled: z.boolean(), password: z.string().min(1).max(1024).optional() }),
      responses: { 200: { description: 'The settings now', schema: statusSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const userId = caller.user.id;
        if (body.enabled && !caller.user.emailVerifiedAt) {
          throw new TollgateError(
            'two_factor_email_unverified',
            'verify your email address before using it for codes',
            {
              hint: 'a code sent to an address you cannot read would lock you out',
            },
          );
        }
        const current = await loadTwoFactorSettings(database, userId);
        if (!body.enabled && current?.emailCodesEnabled && !current.totpConfirmedAt && !current.smsConfirmedAt) {
          if (body.password === undefined) {
            throw new TollgateError('validation_failed', 'password: required to turn two-factor authentication off', {
              details: { issues: [{ path: 'password', message: 'required' }] },
            });
          }
          await assertSecondFactorNotThrottled(database, userId);
          const login = await findLoginByEmail(database, caller.user.email);
          if (!login?.passwordHash || !(await verifyPassword(body.password, login.passwordHash)).ok) {
            const failure = { operation: 'email_codes_off', factor: 'password', reason: 'wrong' } as const;
            throw (await refuseSignedIn(ctx, caller, failure)).error;
          }
        }
        const settings = await database.transaction(async (tx) => {
          const before = await loadTwoFactorSettings(tx, userId, { forUpdate: true });
          if ((before?.emailCodesEnabled ?? false) !== body.enabled) {
            await setEmailCodes(tx, userId, body.enabled);
            await appendAuditEntry(tx, {
              ...callerAudit(ctx, caller),
              action: body.enabled ? 'user.two_factor_email_enabled' : 'user.two_factor_email_disabled',
              outcome: 'success',
            });
          }
          return loadTwoFactorSettings(tx, userId);
        });
        ctx.body = statusBody(settings);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/login/2fa/email',
      operationId: 'sendLoginEmailCode',
      summary: 'Email a 6-digit code for the second step of a login',
      description:
        'For a challenge whose methods include `email`. A new code replaces the previous one; a challenge sends ' +
        `at most ${maxEmailCodesPerChallenge}. The code works until the challenge expires.`,
      tags: ['auth'],
      body: z.object({ challenge: z.string().min(1).max(200) }),
      responses: {
        200: {
          description: 'Sent',
          schema: z.object({ sent_to: z.string().describe('The address, partly hidden'), expires_at: z.string() }),
        },
      },
      handler: async (ctx, { body }) => {
        const prepared = await database.transaction(async (tx) => {
          const challenge = await findLoginChallenge(tx, body.challenge);
          if (!challenge) throw challengeExpired('this login is unknown');
          const dead = challengeDeadReason(challenge);
          if (dead) throw challengeExpired(dead);
          const user = await findUserById(tx, challenge.userId);
          const settings = await loadTwoFactorSettings(tx, challenge.userId);
          if (!user || !settings) throw challengeExpired('this login can no longer be completed');
          if (!settings.emailCodesEnabled) {
            throw new TollgateError('validation_failed', 'this account does not use email codes', {
              hint: 'use a code from your authenticator app or a recovery code',
            });
          }
          if (challenge.emailCodesSent >= maxEmailCodesPerChallenge) {
            throw new TollgateError('rate_limited', 'enough codes were emailed for this login', {
              hint: 'use the last code sent, or log in again',
            });
          }
          const { code, hash } = newEmailCode();
          await storeChallengeEmailCode(tx, challenge.id, hash);
          return { code, user, expiresAt: challenge.expiresAt };
        });
        // Sent after the commit: a code that fails to arrive can be sent again, a sent code is always stored.
        const minutes = Math.round(challengeLifetimeMs / 60_000);
        await mailer.send({
          to: prepared.user.email,
          subject: `Your Tollgate sign-in code: ${prepared.code}`,
          text:
            `Your code to finish signing in to Tollgate is ${prepared.code}\n\n` +
            `It works once, for the next ${minutes} minutes.\n\n` +
            'If you did not just sign in, someone knows your password: change it now.\n',
          headers: { 'Auto-Submitted': 'auto-generated', 'X-Tollgate-Purpose': 'login-code' },
        });
        ctx.body = { sent_to: maskEmail(prepared.user.email), expires_at: prepared.expiresAt.toISOString() };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/2fa/sms',
      operationId: 'startSmsEnrolment',
      summary: 'Add a phone number for SMS codes: a code is sent to it',
      description:
        'The number, in E.164 form (`+15551234567`; spaces, dashes and brackets are ignored), is stored sealed and ' +
        'sent a 6-digit code; POST /v1/me/2fa/sms/confirm with it makes SMS codes a second factor. Starting again ' +
        'replaces a pending number and sends a new code; with SMS codes already on the answer is 409 ' +
        '`two_factor_already_enabled`. A number that is not E.164, or that the SMS provider cannot deliver to, is ' +
        '400 `invalid_phone`; an account is sent at most 10 text messages an hour (429 `rate_limited`).',
      tags: ['two-factor'],
      body: z.object({ phone: z.string().max(200).describe('A mobile number in international format: +15551234567') }),
      responses: {
        200: {
          description: 'The code is sent',
          schema: z.object({
            sms: z.literal('pending'),
            phone: z.string().describe('The number, partly hidden: +1 *** *** 4567'),
            expires_at: z.string().describe('When the code stops working'),
          }),
        },
      },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const sender = smsSender();
        const phone = parsePhoneNumber(body.phone);
        const started = await database.transaction((tx) =>
          startSmsEnrolment(tx, { userId: caller.user.id, phone, keyring }),
        );
        // Sent after the commit, like email codes; a number that cannot be sent to is not kept.
        try {
          await sender.send({
            to: phone,
            body:
              `${started.code} is your Tollgate code to confirm this phone for sign-in. ` +
              `It expires in ${Math.round(smsEnrolmentLifetimeMs / 60_000)} minutes.`,
          });
        } catch (error) {
          await database.transaction((tx) => abandonSmsEnrolment(tx, caller.user.id, started.codeHash));
          throw error;
        }
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { sms: 'pending', phone: started.masked, expires_at: started.expiresAt.toISOString() };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/me/2fa/sms/confirm',
      operationId: 'confirmSmsEnrolment',
      summary: 'Turn on SMS codes with the code sent to the new number',
      description:
        `The code works for ${Math.round(smsEnrolmentLifetimeMs / 60_000)} minutes and ${maxChallengeAttempts} ` +
        "wrong tries; a wrong one is 400 `validation_failed` and counts against the account's limit of wrong codes. " +
        'From now on a login can be completed with a code sent by SMS.',
      tags: ['two-factor'],
      body: z.object({ code: codeSchema }),
      responses: { 200: { description: 'SMS codes are on', schema: statusSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const userId = caller.user.id;
        await assertSecondFactorNotThrottled(database, userId);
        const outcome = await database.transaction(async (tx) => {
          const settings = await loadTwoFactorSettings(tx, userId, { forUpdate: true });
          const confirmed = await confirmSmsEnrolment(tx, settings, { code: body.code });
          if (confirmed.ok) {
            await appendAuditEntry(tx, {
              ...callerAudit(ctx, caller),
              action: 'user.two_factor_sms_enabled',
              outcome: 'success',
              details: { method: 'sms' },
            });
            return { ok: true, settings: await loadTwoFactorSettings(tx, userId) } as const;
          }
          if (confirmed.reason === 'wrong') {
            await recordSecondFactorFailure(tx, userId);
            await appendAuditEntry(tx, {
              ...callerAudit(ctx, caller),
              action: 'auth.two_factor_failed',
              outcome: 'failure',
              details: { operation: 'sms_enrolment', method: 'sms', reason: 'wrong' },
            });
          }
          return confirmed;
        });
        if (!outcome.ok) {
          const message =
            outcome.reason === 'wrong'
              ? 'code: the code does not match the one sent to your phone'
              : outcome.reason === 'expired'
                ? 'code: the code expired'
                : 'code: too many wrong codes for this number';
          throw new TollgateError('validation_failed', message, {
            hint:
              outcome.reason === 'wrong'
                ? 'check the last text message from Tollgate'
                : 'ask for a new code: POST /v1/me/2fa/sms (tollgate 2fa enable --method sms --phone ...)',
            details: {
              issues: [{ path: 'code', message: outcome.reason }],
              attempts_left: outcome.attemptsLeft,
            },
          });
        }
        ctx.body = statusBody(outcome.settings);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/me/2fa/sms',
      operationId: 'disableSms',
      summary: 'Stop using SMS codes, and forget the phone number',
      description:
        'Needs the password when SMS codes are on (403 `reauthentication_failed` when it is wrong, counted against ' +
        'the account); a pending number is dropped without it. Other second factors stay on.',
      tags: ['two-factor'],
      body: z.object({ password: z.string().min(1).max(1024).optional() }),
      responses: { 200: { description: 'The settings now', schema: statusSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, { database, signingKey }, sessionOnly);
        const userId = caller.user.id;
        const current = await loadTwoFactorSettings(database, userId);
        if (!current?.smsPhoneSealed) {
          throw new TollgateError('two_factor_not_enabled', 'SMS codes are not on for this account', {
            hint: 'add a number with POST /v1/me/2fa/sms (tollgate 2fa enable --method sms --phone ...)',
          });
        }
        const passwordChecked = current.smsConfirmedAt !== null;
        if (passwordChecked) {
          if (body.password === undefined) {
            throw new TollgateError('validation_failed', 'password: required to turn SMS codes off', {
              details: { issues: [{ path: 'password', message: 'required' }] },
            });
          }
          await assertSecondFactorNotThrottled(database, userId);
          const login = await findLoginByEmail(database, caller.user.email);
          if (!login?.passwordHash || !(await verifyPassword(body.password, login.passwordHash)).ok) {
            const failure = { operation: 'sms_off', factor: 'password', reason: 'wrong' } as const;
            throw (await refuseSignedIn(ctx, caller, failure)).error;
          }
        }
        const settings = await database.transaction(async (tx) => {
          const before = await loadTwoFactorSettings(tx, userId, { forUpdate: true });
          if (!before?.smsPhoneSealed) return before;
          // Confirmed meanwhile by another request: that number is a factor now, and needs the password.
          if (before.smsConfirmedAt && !passwordChecked) {
            throw new TollgateError('validation_failed', 'password: required to turn SMS codes off', {
              details: { issues: [{ path: 'password', message: 'required' }] },
            });
          }
          await disableSms(tx, userId);
          if (before.smsConfirmedAt) {
            await appendAuditEntry(tx, {
              ...callerAudit(ctx, caller),
              action: 'user.two_factor_sms_disabled',
              outcome: 'success',
              details: { method: 'sms' },
            });
          }
          return loadTwoFactorSettings(tx, userId);
        });
        ctx.body = statusBody(settings);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/login/2fa/sms',
      operationId: 'sendLoginSmsCode',
      summary: 'Text a 6-digit code for the second step of a login',
      description:
        'For a challenge whose methods include `sms`. A new code replaces the previous one; a challenge sends at ' +
        `most ${maxSmsCodesPerChallenge}, and an account is sent at most 10 text messages an hour. The code works ` +
        'until the challenge expires.',
      tags: ['auth'],
      body: z.object({ challenge: z.string().min(1).max(200) }),
      responses: {
        200: {
          description: 'Sent',
          schema: z.object({ sent_to: z.string().describe('The number, partly hidden'), expires_at: z.string() }),
        },
      },
      handler: async (ctx, { body }) => {
        const sender = smsSender();
        const prepared = await database.transaction(async (tx) => {
          const challenge = await findLoginChallenge(tx, body.challenge);
          if (!challenge) throw challengeExpired('this login is unknown');
          const dead = challengeDeadReason(challenge);
          if (dead) throw challengeExpired(dead);
          const settings = await loadTwoFactorSettings(tx, challenge.userId);
          if (!settings) throw challengeExpired('this login can no longer be completed');
          if (!settings.smsConfirmedAt || !settings.smsPhoneMasked) {
            throw new TollgateError('validation_failed', 'this account does not use SMS codes', {
              hint: 'use another of the methods the login answered',
            });
          }
          if (challenge.smsCodesSent >= maxSmsCodesPerChallenge) {
            throw new TollgateError('rate_limited', 'enough codes were texted for this login', {
              hint: 'use the last code sent, or log in again',
            });
          }
          await countSmsSend(tx, challenge.userId);
          const { code, hash } = newSmsCode();
          await storeChallengeSmsCode(tx, challenge.id, hash);
          return {
            code,
            phone: openSmsPhone(settings, keyring),
            masked: settings.smsPhoneMasked,
            expiresAt: challenge.expiresAt,
          };
        });
        // Sent after the commit: a code that fails to arrive can be sent again, a sent code is always stored.
        const minutes = Math.round(challengeLifetimeMs / 60_000);
        await sender.send({
          to: prepared.phone,
          body:
            `${prepared.code} is your Tollgate sign-in code. It works once, for ${minutes} minutes. ` +
            'Not you? Someone knows your password: change it.',
        });
        ctx.body = { sent_to: prepared.masked, expires_at: prepared.expiresAt.toISOString() };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/login/2fa',
      operationId: 'completeLogin',
      summary: 'Finish a login with a second factor',
      description:
        'Trades the challenge from POST /v1/auth/login and a code for a session (the same answer as a login ' +
        'without two-factor). A TOTP code works once; a recovery code is used up. A wrong code is 401 ' +
        `\`two_factor_invalid\`; after ${maxChallengeAttempts} the challenge is dead, as it is once used or ` +
        'after 5 minutes (401 `two_factor_challenge_expired`): log in again.',
      tags: ['auth'],
      body: z.object({
        challenge: z.string().min(1).max(200),
        code: codeSchema,
        method: methodSchema.optional().describe('Which factor the code is; guessed from its shape when left out'),
      }),
      responses: { 200: { description: 'Signed in', schema: tokensSchema } },
      handler: async (ctx, { body }) => {
        const client = clientOf(ctx);
        const now = new Date();
        const outcome = await database.transaction(async (tx) => {
          const challenge = await findLoginChallenge(tx, body.challenge);
          if (!challenge) throw challengeExpired('this login is unknown');
          const user = await findUserById(tx, challenge.userId);
          const settings = await loadTwoFactorSettings(tx, challenge.userId, { forUpdate: true });
          const methods = loginMethods(settings);
          const audit = {
            actorUserId: challenge.userId,
            actorLabel: user ? userLabel(user.id) : 'anonymous',
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
          };
          const dead = challengeDeadReason(challenge, now);
          if (dead || !user || !settings || methods.length === 0) {
            return { ok: false, error: challengeExpired(dead ?? 'this login can no longer be completed') } as const;
          }
          if (body.method && !methods.includes(body.method)) {
            throw new TollgateError('validation_failed', `method: this account does not use ${body.method} codes`, {
              details: { issues: [{ path: 'method', message: `one of: ${methods.join(', ')}` }] },
            });
          }
          await assertSecondFactorNotThrottled(tx, user.id, now);
          const check = await useSecondFactor(tx, settings, {
            code: body.code,
            method: body.method,
            allowed: methods,
            keyring,
            emailCodeHash: challenge.emailCodeHash,
            smsCodeHash: challenge.smsCodeHash,
            now,
          });
          if (!check.ok) {
            const attempts = await countChallengeAttempt(tx, challenge.id);
            await recordSecondFactorFailure(tx, user.id, now);
            await appendAuditEntry(tx, {
              ...audit,
              action: 'auth.two_factor_failed',
              outcome: 'failure',
              targetType: 'user',
              targetId: user.id,
              details: { operation: 'login', method: check.method, reason: check.reason, attempts },
            });
            const left = maxChallengeAttempts - attempts;
            const message = `${codeFailureMessage(check.reason)}${left > 0 ? '' : '; that was the last try for this login'}`;
            return {
              ok: false,
              error: new TollgateError('two_factor_invalid', message, {
                ...(left > 0 ? {} : { hint: 'log in again with your email and password' }),
                details: { attempts_left: Math.max(left, 0) },
              }),
            } as const;
          }
          await markChallengeUsed(tx, challenge.id, now);
          const tokens = await createSession(tx, {
            userId: user.id,
            client,
            signingKey,
            refreshTokens: options.refreshTokens,
            now,
          });
          await appendAuditEntry(tx, {
            ...audit,
            action: 'auth.login',
            outcome: 'success',
            targetType: 'session',
            targetId: tokens.sessionId,
            details: { two_factor: check.method },
          });
          return { ok: true, tokens, user } as const;
        });
        if (!outcome.ok) throw outcome.error;
        ctx.body = tokensBody(outcome.tokens, outcome.user);
      },
    }),
  ];
}

function notEnabled(): TollgateError {
  return new TollgateError('two_factor_not_enabled', 'two-factor authentication is not on for this account', {
    hint: 'turn it on with POST /v1/me/2fa/totp (tollgate 2fa enable)',
  });
}

/**
 * The registry of stable error codes. A code is part of the public contract: clients branch on it,
 * docs link to it, and it never changes meaning once released. The HTTP status is derived from the
 * code here and nowhere else.
 */
export const errorStatus = {
  validation_failed: 400,
  invalid_json: 400,
  unauthorized: 401,
  key_revoked: 401,
  invalid_credentials: 401,
  refresh_token_reused: 401,
  payment_required: 402,
  forbidden: 403,
  two_factor_required_by_team: 403,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  email_taken: 409,
  slug_taken: 409,
  already_member: 409,
  last_admin: 409,
  owner_cannot_leave: 409,
  owner_must_transfer: 409,
  invitation_invalid: 400,
  payload_too_large: 413,
  // Refused by the HTTP parser before any route: headers over 16 KiB, a malformed request.
  headers_too_large: 431,
  malformed_request: 400,
  unsupported_media_type: 415,
  rate_limited: 429,
  quota_exhausted: 429,
  internal_error: 500,
  not_implemented: 501,
  // An API's plugin list names a plugin that does not exist, or a configuration it refuses.
  plugin_misconfigured: 500,
  upstream_unavailable: 502,
  not_ready: 503,
  limiter_unavailable: 503,
  // The refresh-token store (Redis, when configured) cannot be reached: a refresh or a login is
  // refused rather than a token accepted, or handed out, without its check.
  session_store_unavailable: 503,
  database_unreachable: 503,
  upstream_timeout: 504,
  // Start-up and operator errors: never sent over HTTP, but they share the registry so the CLI and
  // the logs use the same vocabulary.
  config_invalid: 500,
  data_dir_locked: 500,
  listen_failed: 500,
  interrupted: 500,
  migration_failed: 500,
  migration_modified: 500,
  schema_ahead: 500,
  // Secrets at rest (services/src/secrets/master-keyring.ts): a stored secret could not be decrypted.
  // An operator problem (wrong or missing master key, damaged row), never the caller's fault.
  secret_key_unknown: 500,
  secret_corrupt: 500,

  // Audit log (services/src/audit): entries exist but the chain head row is gone, so appending would
  // restart the chain. An operator problem, never the caller's fault.
  audit_chain_broken: 500,

  // Outgoing email (services/src/mail): the mail server refused the login or the message, could not
  // be reached, or the mail directory could not be written. The upstream failed, not the caller.
  mail_failed: 502,

  // Two-factor authentication (services/src/identity/two-factor-routes.ts).
  // At login, the second step: the code is wrong, malformed or was already used (401), or the
  // challenge from the password step is unknown, expired, used or out of attempts (401: log in again).
  two_factor_invalid: 401,
  two_factor_challenge_expired: 401,
  // Signed in, confirming a change (disabling 2FA, new recovery codes) with a wrong password or code.
  // 403 rather than 401: the session is fine, so a client must not refresh its token and retry.
  reauthentication_failed: 403,
  two_factor_not_enabled: 409,
  two_factor_already_enabled: 409,
  // Email codes as a second factor need an address the user has proven they read.
  two_factor_email_unverified: 409,

  // SMS as a second factor (services/src/sms, two-factor-routes.ts). A phone number that is not in
  // E.164 form, or that the SMS provider says it cannot deliver to.
  invalid_phone: 400,
  // The API was given no SMS sender (an embedding without one; `tollgate start` always has one).
  sms_not_configured: 501,
  // The SMS provider refused the message or our credentials, could not be reached, or the SMS
  // directory could not be written. The upstream failed, not the caller.
  sms_failed: 502,

  // The API registry (services/src/apis). Another API already routes this host, or this path prefix
  // (its own path prefix or its /<slug>).
  host_taken: 409,
  path_prefix_taken: 409,
  // An upstream that is not an absolute http(s) URL with a host, or carries credentials, a query or
  // a fragment.
  invalid_upstream: 400,
  // Deleting an API that API keys are limited to, without force.
  api_in_use: 409,

  // The plan catalog (services/src/plans/plan-catalog.ts). Changing an archived plan; archiving the
  // default plan, which teams without a subscription use.
  plan_archived: 409,
  plan_is_default: 409,

  // Account flows (services/src/identity/account-routes.ts). A mailed token (email verification,
  // password reset, email change) that is unknown, expired or already used: one code for all three,
  // so a caller learns nothing about tokens it does not hold.
  token_invalid: 400,
  // Asking for a new verification email for an address that is already verified.
  email_already_verified: 409,

  // Login through outside providers (services/src/identity/oauth/). The provider is not set up on
  // this installation, or the team has no SSO.
  provider_not_configured: 404,
  sso_not_configured: 404,
  // The address the browser should come back to is not a loopback address or this installation.
  invalid_redirect_uri: 400,
  // The one-time login code is unknown, expired, already used, or the PKCE verifier does not match.
  invalid_login_code: 400,
  // The provider refused (the person cancelled, or the provider answered an error) or could not be
  // reached or understood.
  oauth_denied: 403,
  provider_unavailable: 502,
  // The provider does not vouch for an email address, so no account can be found or made for it.
  oauth_email_unverified: 403,
  // An account with that email exists but this identity is not linked to it: log in to it and link.
  oauth_account_conflict: 409,
  // Linking an identity that already belongs to another account.
  identity_linked_elsewhere: 409,
  // Unlinking the only way left to log in (no password and no other identity).
  last_login_method: 409,
  // A team's SSO email domains do not include the address the provider vouched for.
  sso_domain_not_allowed: 403,

  // Personal access tokens (services/src/identity/personal-access-tokens.ts). A route that manages
  // credentials (making tokens, deleting the account, changing the password, email or second
  // factors, logging out) called with a token instead of a session: 403, not 401, since the token is
  // fine and a client must not refresh and retry.
  session_required: 403,
  // The account already holds the most live personal access tokens it may.
  token_limit_reached: 409,

  // API keys at the gateway (gateway/src/keys/key-verifier.ts). key_revoked (above) and key_expired:
  // the key was real but no longer works (401, like an unknown key). The other three: the key is
  // valid but limited to other APIs, HTTP methods or client addresses (403: retrying will not help).
  key_expired: 401,
  key_api_not_allowed: 403,
  key_method_not_allowed: 403,
  key_address_not_allowed: 403,

  // Reported usage (services/src/usage/usage-reports.ts, POST /v1/usage). An idempotency key used
  // before with a different body (the same body answers the original result); an event whose `at`
  // is more than 30 days old (its key may be forgotten, so it could be counted twice) or ahead of time.
  idempotency_conflict: 409,
  usage_event_out_of_range: 400,

  // Incoming Stripe webhooks (services/src/billing/stripe-webhooks.ts, POST /v1/stripe/webhook). The
  // Stripe-Signature header is missing or does not match the raw body under STRIPE_WEBHOOK_SECRET;
  // the signature is good but its timestamp is more than 5 minutes from our clock, either way (a
  // replayed or held-back request); Stripe is not configured on this installation.
  invalid_signature: 400,
  stale_webhook: 400,
  stripe_not_configured: 404,

  // Subscriptions (services/src/billing/subscriptions.ts, /v1/teams/:team/subscription). The plan has
  // no price in that currency and interval; the team pays in another currency, fixed by its first
  // subscription; it already has a live subscription (change it instead); it has none; it is already
  // on that plan version; resume without a cancel at the period end to undo.
  price_not_offered: 400,
  currency_fixed: 409,
  subscription_exists: 409,
  no_subscription: 404,
  subscription_unchanged: 409,
  subscription_not_canceling: 409,

  // Invoices (services/src/billing/invoices.ts, /v1/invoices). Paying or crediting an invoice that is
  // void, a draft or a credit note.
  invoice_not_payable: 409,
  // Voiding an invoice that is not open (paid: issue a credit note; a credit note; one whose push to
  // the provider is under way or that the provider refuses to void).
  invoice_not_voidable: 409,

  // Credit pack purchases (services/src/credits/credit-purchases.ts). The pack is archived (no longer
  // sold); confirming a purchase that is not pending (already paid or refunded) or not a manual one.
  pack_archived: 409,
  purchase_not_pending: 409,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export function httpStatusFor(code: ErrorCode): number {
  return errorStatus[code];
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorStatus, value);
}

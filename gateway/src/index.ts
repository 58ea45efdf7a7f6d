export {
  createGatewayApp,
  type GatewayApp,
  type GatewayAppOptions,
  reservedGatewayPaths,
} from './create-gateway-app.js';
export {
  createKeyVerifier,
  type KeyCheck,
  type KeyVerifier,
  type KeyVerifierOptions,
  presentedKey,
  type VerifiedKey,
} from './keys/key-verifier.js';
export { billingPeriod } from './limits/billing-period.js';
export { type KeyLimits, limitRequestFor, rateLimitHeaders } from './limits/enforce.js';
export { createLeasingLimiter, type LeasingOptions } from './limits/leasing-limiter.js';
export type { LimitDecision, Limiter, LimitRequest, QuotaSpec, WindowSpec } from './limits/limiter.js';
export { createMemoryLimiter } from './limits/memory-limiter.js';
export { openLimiter } from './limits/open-limiter.js';
export { createRedisLimiter } from './limits/redis-limiter.js';
export { createTeamPolicyCache, type TeamPolicyCache } from './limits/team-policies.js';
export {
  createUsageRecorder,
  type UsageEvent,
  type UsageRecorder,
  type UsageRecorderOptions,
} from './metering/usage-recorder.js';
export { type LiveRoutingOptions, liveRouting, type RoutingSource, staticRouting } from './routing/routing-snapshot.js';
export { normalizeHost, type RouteMatch, RoutingTable } from './routing/routing-table.js';

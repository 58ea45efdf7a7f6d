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
export {
  createUsageRecorder,
  type UsageEvent,
  type UsageRecorder,
  type UsageRecorderOptions,
} from './metering/usage-recorder.js';
export { type LiveRoutingOptions, liveRouting, type RoutingSource, staticRouting } from './routing/routing-snapshot.js';
export { normalizeHost, type RouteMatch, RoutingTable } from './routing/routing-table.js';

export { createGatewayApp, type GatewayAppOptions, reservedGatewayPaths } from './create-gateway-app.js';

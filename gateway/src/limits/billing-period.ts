// One implementation, in services (the usage API reports quota periods too); the gateway's modules
// keep importing it from here.
export { billingPeriod } from '@tollgate/services';

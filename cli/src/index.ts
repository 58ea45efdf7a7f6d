export { type Component, components } from './runtime/components.js';
export { type RunningTollgate, type StartOptions, startTollgate } from './runtime/start-tollgate.js';

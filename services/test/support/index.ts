export * from './api.js';
export * from './backends.js';
export * from './mail.js';
export * from './redis-keys.js';
export * from './tcp-proxy.js';
export * from './browser.js';
export * from './github.js';
export * from './oidc-provider.js';

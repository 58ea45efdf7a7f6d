export * from './api.js';
export * from './backends.js';
export * from './mail.js';
export * from './tcp-proxy.js';

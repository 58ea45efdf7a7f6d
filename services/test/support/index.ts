export * from './backends.js';
export * from './tcp-proxy.js';

export * from './config.js';
export * from './credentials.js';
export * from './registry.js';
export * from './faults/index.js';
export * from './gateway/gateway.js';
export * from './agent/agent-session.js';
export * from './demo-services.js';
export * from './sandbox.js';

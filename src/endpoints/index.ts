export * from './local-listener.js';
export * from './connection-bridges.js';
export * from './port-forwarder.js';
export * from './stdio.js';
export * from './tunnel-spec.js';
export * from './carrier.js';
export * from './session-carrier.js';
export * from './replacing-carrier.js';

export * from './local-listener.js';
export * from './connection-bridges.js';
export * from './port-forwarder.js';
export * from './stdio.js';

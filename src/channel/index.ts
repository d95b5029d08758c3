export * from './transport.js';
export * from './websocket-transport.js';
export * from './rtt-estimator.js';
export * from './reliable-channel.js';

export * from './constants.js';
export * from './agent-message.js';
export * from './payloads.js';
export * from './port-plugin-policy.js';

export * from './ssm-api.js';
export * from './aws-config.js';
export * from './data-channel.js';
export * from './handshake.js';
export * from './status.js';
export * from './bridge-session.js';
export * from './resume-policy.js';

/**
 * ssm-bridge as a library: what the CLI is built from. The layers, bottom up, are also exported whole as
 * namespaces (`protocol`, `channel`, `smux`) for those who build their own endpoints.
 */
export { PortForwarder, startStdioProxy, type LocalEndpoint, type PortForwardOptions, type StdioProxy, type StdioProxyOptions } from './endpoints/index.js';
export { BridgeSession, createSsmApi, type AwsOptions, type BridgeSessionOptions, type SessionStatus, type SsmApi, type StartSessionInput } from './session/index.js';
export { SANDBOX_CREDENTIALS, startDemoServices, startSandbox, type Sandbox, type SandboxOptions } from './sandbox/index.js';
export { BridgeError, ErrorCode, ProtocolError, isBridgeError } from './errors.js';
export * as protocol from './protocol/index.js';
export * as channel from './channel/index.js';
export * as smux from './smux/index.js';

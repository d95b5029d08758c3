import type { PortSessionProperties } from '../protocol/index.js';
import type { DocumentConfig, SandboxConfig } from './config.js';

/** An error the API answers with, shaped as AWS JSON 1.1 errors are. */
export class ApiError extends Error {
  constructor(readonly type: string, readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

const PORT_PATTERN = '^([1-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';
const LOCAL_PORT_PATTERN = '^([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';
const HOST_PATTERN = '^[a-zA-Z0-9.:_\\-\\[\\]]{1,253}$';

/** The built-in Port documents (SPEC §1), as the sandbox understands them. */
export const BUILT_IN_DOCUMENTS: Record<string, DocumentConfig> = {
  'AWS-StartSSHSession': {
    parameters: { portNumber: { default: '22', allowedPattern: PORT_PATTERN } },
    properties: { portNumber: '{{ portNumber }}' },
  },
  'AWS-StartPortForwardingSession': {
    parameters: { portNumber: { default: '80', allowedPattern: PORT_PATTERN }, localPortNumber: { default: '0', allowedPattern: LOCAL_PORT_PATTERN } },
    properties: { portNumber: '{{ portNumber }}', type: 'LocalPortForwarding', localPortNumber: '{{ localPortNumber }}' },
  },
  'AWS-StartPortForwardingSessionToRemoteHost': {
    parameters: {
      host: { allowedPattern: HOST_PATTERN },
      portNumber: { default: '80', allowedPattern: PORT_PATTERN },
      localPortNumber: { default: '0', allowedPattern: LOCAL_PORT_PATTERN },
    },
    properties: { host: '{{ host }}', portNumber: '{{ portNumber }}', type: 'LocalPortForwarding', localPortNumber: '{{ localPortNumber }}' },
  },
};

/** Resolve a document and its Parameters into the session properties the agent will announce. */
export function resolveDocument(config: SandboxConfig, documentName: string | undefined, parameters: Record<string, string[]>): PortSessionProperties {
  if (documentName === undefined) {
    throw new ApiError('InvalidDocument', 400, 'The sandbox emulates Port sessions only; interactive shell sessions (no DocumentName) are not emulated. Pass a port document such as AWS-StartPortForwardingSession.');
  }
  const doc = config.documents[documentName] ?? BUILT_IN_DOCUMENTS[documentName];
  if (!doc) throw new ApiError('InvalidDocument', 400, `Document ${documentName} does not exist or is not a Port session document.`);
  const values: Record<string, string> = {};
  for (const [name, list] of Object.entries(parameters)) {
    const def = doc.parameters[name];
    if (!def) throw new ApiError('InvalidDocument', 400, `Parameter "${name}" is not defined by document ${documentName}; it takes ${Object.keys(doc.parameters).join(', ') || 'no parameters'}.`);
    if (list.length !== 1) throw new ApiError('InvalidDocument', 400, `Parameter "${name}" of document ${documentName} takes exactly one value.`);
    const value = list[0]!;
    if (def.allowedPattern && !new RegExp(def.allowedPattern).test(value)) {
      throw new ApiError('InvalidDocument', 400, `Parameter "${name}" value ${JSON.stringify(value)} does not match the allowed pattern ${def.allowedPattern}.`);
    }
    values[name] = value;
  }
  for (const [name, def] of Object.entries(doc.parameters)) {
    if (values[name] !== undefined) continue;
    if (def.default === undefined) throw new ApiError('InvalidDocument', 400, `Document ${documentName} requires parameter "${name}".`);
    values[name] = def.default;
  }
  const properties: PortSessionProperties = {};
  for (const [key, template] of Object.entries(doc.properties)) {
    properties[key] = template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, p: string) => values[p] ?? '');
  }
  return properties;
}

import { readFileSync } from 'node:fs';
import { BridgeError, ErrorCode } from '../errors.js';
import { SANDBOX_CREDENTIALS, type SandboxCredential } from './credentials.js';

/**
 * The sandbox's configuration, validated: every default filled in.
 *
 * The JSON form ({@link SandboxConfigInput}) looks like this:
 * ```json
 * {
 *   "region": "us-east-1",
 *   "targets": {
 *     "i-0123456789abcdef0": {
 *       "agentVersion": "3.3.2746.0",
 *       "ports": { "22": "127.0.0.1:2222", "5432": "127.0.0.1:5432" },
 *       "remoteHosts": { "db.internal": { "5432": "127.0.0.1:15432" } },
 *       "connected": true
 *     }
 *   },
 *   "documents": {
 *     "My-PortDoc": {
 *       "parameters": { "portNumber": { "type": "String", "default": "443", "allowedPattern": "^(443|8443)$" } },
 *       "properties": { "portNumber": "{{ portNumber }}", "type": "LocalPortForwarding" }
 *     }
 *   },
 *   "sessionExpiryMs": 1200000,
 *   "idleSessionTimeoutMs": 1200000,
 *   "credentials": [{ "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "example-secret" }]
 * }
 * ```
 */
export interface SandboxConfig {
  /** The region requests must be signed for (SigV4 credential scope); printed in the banner. */
  region: string;
  /** Managed nodes by target id (`i-…`, `mi-…`, `ecs:…`: any 1–400 characters, as the API allows). */
  targets: Record<string, TargetConfig>;
  /** Custom Port documents by name, next to the built-in ones. */
  documents: Record<string, DocumentConfig>;
  /** How long a session waits, disconnected (or started and never connected), before it expires. */
  sessionExpiryMs: number;
  /**
   * Session Manager's idle session timeout: a session whose data channel carried no new stream data either way
   * for this long is ended by the service (reason 'idle timeout'). Acks, pings and pause/start do not count.
   */
  idleSessionTimeoutMs: number;
  /** The agent's 1 ms sleep after each message (true, as the agent does); false for speed tests. */
  paced: boolean;
  /** Key pairs accepted besides the sandbox's own (SANDBOX_CREDENTIALS). */
  credentials: SandboxCredential[];
}

/** One emulated managed node. */
export interface TargetConfig {
  /** The agent version it reports; decides stream / basic / multiplexed port forwarding (SPEC §7). */
  agentVersion: string;
  /** Remote port on the node → where the agent's dial of `localhost:<port>` lands here ("127.0.0.1:5432"). */
  ports: Record<string, string>;
  /** Hosts beyond the node (AWS-StartPortForwardingSessionToRemoteHost): hostname → port → local "host:port". */
  remoteHosts: Record<string, Record<string, string>>;
  /** false: StartSession answers TargetNotConnected, as for a node whose agent is offline. */
  connected: boolean;
}

/** A parameter of a Port document. Only `String` parameters exist in Port documents. */
export interface DocumentParameterConfig {
  /** Always "String" once parsed (the only type Port documents use); optional so literals can leave it out. */
  type?: 'String';
  /** Used when the caller leaves the parameter out; without a default the parameter is required. */
  default?: string;
  /** A regular expression each value must match (the document's `allowedPattern`). */
  allowedPattern?: string;
  description?: string;
}

/**
 * The session type properties the agent announces in its HandshakeRequest `SessionType` action (SPEC §4).
 * A type alias (not an interface) so it fits the codec's index-signature `PortSessionProperties`.
 */
export type SessionTypeProperties = {
  portNumber: string;
  /** Absent: stream mode, one connection (SPEC §7), as AWS-StartSSHSession. */
  type?: 'LocalPortForwarding';
  host?: string;
  localPortNumber?: string;
};

/** A Port document's properties: each value a literal or a `{{ parameterName }}` template. */
export type PortPropertiesTemplate = SessionTypeProperties;

/** A custom document of session type Port. */
export interface DocumentConfig {
  parameters: Record<string, DocumentParameterConfig>;
  properties: PortPropertiesTemplate;
}

/** The JSON a user writes: everything but `targets` is optional. */
export interface SandboxConfigInput {
  region?: string;
  targets: Record<
    string,
    {
      agentVersion?: string;
      ports?: Record<string, string>;
      remoteHosts?: Record<string, Record<string, string>>;
      connected?: boolean;
    }
  >;
  documents?: Record<
    string,
    {
      /** Accepted so a real Session document's content can be pasted as is; must be "Port". */
      sessionType?: 'Port';
      schemaVersion?: string;
      description?: string;
      parameters?: Record<string, { type?: 'String'; default?: string; allowedPattern?: string; description?: string }>;
      properties: { portNumber: string; type?: 'LocalPortForwarding'; host?: string; localPortNumber?: string };
    }
  >;
  sessionExpiryMs?: number;
  idleSessionTimeoutMs?: number;
  paced?: boolean;
  credentials?: Array<{ accessKeyId: string; secretAccessKey: string }>;
}

export const DEFAULT_REGION = 'us-east-1';
/** A current agent: smux multiplexing for LocalPortForwarding, smux keep-alive off for current clients (SPEC §7). */
export const DEFAULT_AGENT_VERSION = '3.3.2746.0';
/** Session Manager's default idle session timeout is 20 minutes; a disconnected session lives as long here. */
export const DEFAULT_SESSION_EXPIRY_MS = 20 * 60_000;
/** Session Manager's default idle session timeout (a preference of 1–60 minutes; 20 by default). */
export const DEFAULT_IDLE_SESSION_TIMEOUT_MS = 20 * 60_000;
/** setTimeout's limit: longer delays fire at once. */
export const MAX_SESSION_EXPIRY_MS = 2_147_483_647;
/** A `{{ name }}` placeholder in a document's properties. */
export const PLACEHOLDER_PATTERN = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** CreateDocument's name pattern; StartSession's DocumentName pattern also allows ':' and '/' for ARNs. */
const CUSTOM_DOCUMENT_NAME = /^[a-zA-Z0-9_\-.]{3,128}$/;
/** CreateDocument reserves these name prefixes for AWS-owned documents. */
const RESERVED_DOCUMENT_PREFIX = /^(aws|amazon|amzn)/i;
const PARAMETER_NAME = /^[a-zA-Z0-9_]{1,255}$/;
const PROPERTY_KEYS = new Set(['portNumber', 'type', 'host', 'localPortNumber']);
const AGENT_VERSION = /^\d+(\.\d+){1,3}$/;
const REGION = /^[a-z]{2}(-[a-z0-9]+)+$/;
/** IAM's AccessKeyId pattern is `[\w]+` of 16–128 characters; shorter ones (AKIDSANDBOX) are allowed here. */
const ACCESS_KEY_ID = /^\w{1,128}$/;
const MAX_SECRET_LENGTH = 128;

function fail(path: string, message: string): never {
  throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `sandbox config: ${path} ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (!isObject(value)) fail(path, `must be an object, got ${describe(value)}`);
  return value;
}

function onlyKeys(value: Record<string, unknown>, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${path}.${key}`, `is not a known key; expected one of ${allowed.join(', ')}`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isPort(text: string, allowZero = false): boolean {
  if (!/^\d{1,5}$/.test(text)) return false;
  const n = Number(text);
  return n <= 65535 && (allowZero || n >= 1);
}

/**
 * Split "host:port" ("[::1]:22" for IPv6) into its parts; undefined when it is not one. Used for the
 * `ports` and `remoteHosts` values.
 */
export function parseHostPort(value: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value);
  if (!match || !isPort(match[3]!)) return undefined;
  return { host: (match[1] ?? match[2])!, port: Number(match[3]) };
}

function hostPort(value: unknown, path: string): string {
  if (typeof value !== 'string' || parseHostPort(value) === undefined) {
    fail(path, `must be "host:port" with a port from 1 to 65535 (IPv6 as "[::1]:22"), got ${describe(value)}`);
  }
  return value;
}

function portMap(value: unknown, path: string): Record<string, string> {
  if (value === undefined) return {};
  const out: Record<string, string> = {};
  for (const [port, destination] of Object.entries(object(value, path))) {
    if (!isPort(port)) fail(`${path}.${port}`, 'must be keyed by a port number from 1 to 65535');
    out[port] = hostPort(destination, `${path}.${port}`);
  }
  return out;
}

function parseTarget(id: string, value: unknown): TargetConfig {
  const path = `targets.${id}`;
  if (id.length < 1 || id.length > 400) fail(path, 'is not a valid target id: it must have 1 to 400 characters');
  const t = object(value, path);
  onlyKeys(t, path, ['agentVersion', 'ports', 'remoteHosts', 'connected']);
  const agentVersion = t.agentVersion ?? DEFAULT_AGENT_VERSION;
  if (typeof agentVersion !== 'string' || !AGENT_VERSION.test(agentVersion)) {
    fail(`${path}.agentVersion`, `must be a version such as "3.3.2746.0", got ${describe(t.agentVersion)}`);
  }
  const remoteHosts: Record<string, Record<string, string>> = {};
  if (t.remoteHosts !== undefined) {
    for (const [host, ports] of Object.entries(object(t.remoteHosts, `${path}.remoteHosts`))) {
      if (host.length === 0 || /\s/.test(host)) fail(`${path}.remoteHosts.${host}`, 'must be keyed by a host name without spaces');
      // Host names are case-insensitive; the agent's dial is matched in lower case.
      remoteHosts[host.toLowerCase()] = portMap(ports, `${path}.remoteHosts.${host}`);
    }
  }
  const connected = t.connected ?? true;
  if (typeof connected !== 'boolean') fail(`${path}.connected`, `must be true or false, got ${describe(t.connected)}`);
  return { agentVersion, ports: portMap(t.ports, `${path}.ports`), remoteHosts, connected };
}

function parseParameter(name: string, value: unknown, path: string): DocumentParameterConfig {
  if (!PARAMETER_NAME.test(name)) fail(path, 'is not a valid parameter name: use 1 to 255 letters, digits or underscores');
  const p = object(value, path);
  onlyKeys(p, path, ['type', 'default', 'allowedPattern', 'description']);
  if (p.type !== undefined && p.type !== 'String') fail(`${path}.type`, `must be "String" (the only parameter type Port documents use), got ${describe(p.type)}`);
  const out: DocumentParameterConfig = { type: 'String' };
  if (p.description !== undefined) {
    if (typeof p.description !== 'string') fail(`${path}.description`, 'must be a string');
    out.description = p.description;
  }
  if (p.allowedPattern !== undefined) {
    if (typeof p.allowedPattern !== 'string') fail(`${path}.allowedPattern`, 'must be a string');
    try {
      new RegExp(p.allowedPattern);
    } catch (err) {
      fail(`${path}.allowedPattern`, `is not a valid regular expression: ${(err as Error).message}`);
    }
    out.allowedPattern = p.allowedPattern;
  }
  if (p.default !== undefined) {
    if (typeof p.default !== 'string') fail(`${path}.default`, `must be a string, got ${describe(p.default)}`);
    if (out.allowedPattern !== undefined && !new RegExp(out.allowedPattern).test(p.default)) {
      fail(`${path}.default`, `${describe(p.default)} does not match its allowedPattern ${out.allowedPattern}`);
    }
    out.default = p.default;
  }
  return out;
}

function parseDocument(name: string, value: unknown): DocumentConfig {
  const path = `documents.${name}`;
  if (!CUSTOM_DOCUMENT_NAME.test(name)) fail(path, 'is not a valid document name: use 3 to 128 letters, digits, "_", "-" or "."');
  if (RESERVED_DOCUMENT_PREFIX.test(name)) fail(path, 'uses a prefix reserved for AWS documents ("aws", "amazon", "amzn"); choose another name');
  const d = object(value, path);
  onlyKeys(d, path, ['sessionType', 'schemaVersion', 'description', 'parameters', 'properties']);
  if (d.sessionType !== undefined && d.sessionType !== 'Port') fail(`${path}.sessionType`, `must be "Port": the sandbox emulates Port sessions only, got ${describe(d.sessionType)}`);
  for (const key of ['schemaVersion', 'description'] as const) {
    if (d[key] !== undefined && typeof d[key] !== 'string') fail(`${path}.${key}`, 'must be a string');
  }
  const parameters: Record<string, DocumentParameterConfig> = {};
  if (d.parameters !== undefined) {
    for (const [p, def] of Object.entries(object(d.parameters, `${path}.parameters`))) parameters[p] = parseParameter(p, def, `${path}.parameters.${p}`);
  }
  const props = object(d.properties, `${path}.properties`);
  const properties: Record<string, string> = {};
  for (const [key, template] of Object.entries(props)) {
    const at = `${path}.properties.${key}`;
    if (!PROPERTY_KEYS.has(key)) fail(at, `is not a Port session property; use ${[...PROPERTY_KEYS].join(', ')}`);
    if (typeof template !== 'string') fail(at, `must be a string, got ${describe(template)}`);
    for (const m of template.matchAll(PLACEHOLDER_PATTERN)) {
      if (parameters[m[1]!] === undefined) fail(at, `refers to {{ ${m[1]} }}, which is not among the document's parameters`);
    }
    properties[key] = template;
  }
  if (properties.portNumber === undefined) fail(`${path}.properties.portNumber`, 'is required: a Port document names the port the agent dials');
  if (properties.type !== undefined && properties.type !== 'LocalPortForwarding') {
    fail(`${path}.properties.type`, `must be "LocalPortForwarding" or left out (stream mode), got ${describe(properties.type)}`);
  }
  return { parameters, properties: properties as unknown as PortPropertiesTemplate };
}

function parseCredentials(value: unknown): SandboxCredential[] {
  if (value === undefined) return [];
  // The messages here never echo a value: it may hold a secret.
  const shape = 'a list of {"accessKeyId", "secretAccessKey"}';
  if (!Array.isArray(value)) fail('credentials', `must be ${shape}, got ${value === null ? 'null' : typeof value}`);
  const seen = new Map<string, string>([[SANDBOX_CREDENTIALS.accessKeyId, SANDBOX_CREDENTIALS.secretAccessKey]]);
  return value.map((item: unknown, i) => {
    const path = `credentials[${i}]`;
    if (!isObject(item)) fail(path, `must be an object {"accessKeyId", "secretAccessKey"}, got ${item === null ? 'null' : Array.isArray(item) ? 'a list' : typeof item}`);
    const c = item;
    onlyKeys(c, path, ['accessKeyId', 'secretAccessKey']);
    if (typeof c.accessKeyId !== 'string' || !ACCESS_KEY_ID.test(c.accessKeyId)) {
      fail(`${path}.accessKeyId`, `must be 1 to 128 letters, digits or underscores, got ${describe(c.accessKeyId)}`);
    }
    if (typeof c.secretAccessKey !== 'string' || c.secretAccessKey.length < 1 || c.secretAccessKey.length > MAX_SECRET_LENGTH || /\s/.test(c.secretAccessKey)) {
      fail(`${path}.secretAccessKey`, `must be a string of 1 to ${MAX_SECRET_LENGTH} characters without spaces`);
    }
    const previous = seen.get(c.accessKeyId);
    if (previous !== undefined && previous !== c.secretAccessKey) {
      fail(`${path}.accessKeyId`, c.accessKeyId === SANDBOX_CREDENTIALS.accessKeyId ? `${c.accessKeyId} is the sandbox's own key (secret "${SANDBOX_CREDENTIALS.secretAccessKey}"); choose another id` : `${c.accessKeyId} is listed twice with different secrets`);
    }
    seen.set(c.accessKeyId, c.secretAccessKey);
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
  });
}

/**
 * Validate a config object and fill in the defaults. Throws BridgeError `INVALID_ARGUMENT` whose message
 * names the offending key, e.g. `sandbox config: targets.i-1.ports.22 must be "host:port" …`.
 */
export function parseSandboxConfig(raw: unknown): SandboxConfig {
  const top = object(raw, '(top level)');
  onlyKeys(top, '(top level)', ['region', 'targets', 'documents', 'sessionExpiryMs', 'idleSessionTimeoutMs', 'paced', 'credentials']);
  if (top.targets === undefined) fail('targets', 'is required: an object of target id → target');
  const targets: Record<string, TargetConfig> = {};
  for (const [id, t] of Object.entries(object(top.targets, 'targets'))) targets[id] = parseTarget(id, t);
  const documents: Record<string, DocumentConfig> = {};
  if (top.documents !== undefined) {
    for (const [name, d] of Object.entries(object(top.documents, 'documents'))) documents[name] = parseDocument(name, d);
  }
  const sessionExpiryMs = top.sessionExpiryMs ?? DEFAULT_SESSION_EXPIRY_MS;
  if (typeof sessionExpiryMs !== 'number' || !Number.isInteger(sessionExpiryMs) || sessionExpiryMs < 1 || sessionExpiryMs > MAX_SESSION_EXPIRY_MS) {
    fail('sessionExpiryMs', `must be a whole number of milliseconds from 1 to ${MAX_SESSION_EXPIRY_MS}, got ${describe(top.sessionExpiryMs)}`);
  }
  const idleSessionTimeoutMs = top.idleSessionTimeoutMs ?? DEFAULT_IDLE_SESSION_TIMEOUT_MS;
  if (!isTimeout(idleSessionTimeoutMs)) {
    fail('idleSessionTimeoutMs', `must be a whole number of milliseconds from 1 to ${MAX_SESSION_EXPIRY_MS}, got ${describe(top.idleSessionTimeoutMs)}`);
  }
  const region = top.region ?? DEFAULT_REGION;
  if (typeof region !== 'string' || !REGION.test(region)) fail('region', `must be a region name such as "us-east-1", got ${describe(top.region)}`);
  const paced = top.paced ?? true;
  if (typeof paced !== 'boolean') fail('paced', `must be true or false, got ${describe(top.paced)}`);
  return { region, targets, documents, sessionExpiryMs, idleSessionTimeoutMs, paced, credentials: parseCredentials(top.credentials) };
}

/** A whole number of milliseconds setTimeout can wait: 1 to 2^31 − 1. */
export function isTimeout(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_SESSION_EXPIRY_MS;
}

/** Read a JSON config file and validate it. */
export function readSandboxConfigFile(path: string): SandboxConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `sandbox config: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `sandbox config: ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseSandboxConfig(raw);
}

/** A path to a JSON file, or a config object: validated, with defaults filled in. */
export function loadSandboxConfig(input: string | SandboxConfigInput | SandboxConfig | unknown): SandboxConfig {
  return typeof input === 'string' ? readSandboxConfigFile(input) : parseSandboxConfig(input);
}

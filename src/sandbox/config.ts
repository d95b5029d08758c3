import { readFileSync } from 'node:fs';
import { BridgeError, ErrorCode } from '../errors.js';

/** One emulated managed node. */
export interface TargetConfig {
  /** The agent version it reports; decides basic vs. multiplexed port forwarding (SPEC §7). */
  agentVersion: string;
  /** Remote port on the node → where the agent's dial lands on this machine ("127.0.0.1:5432"). */
  ports: Record<string, string>;
  /** Hosts beyond the node: hostname → port → local "host:port". */
  remoteHosts: Record<string, Record<string, string>>;
  /** false: StartSession answers TargetNotConnected, as for a node whose agent is offline. */
  connected: boolean;
}

/** A custom document of session type Port. */
export interface DocumentConfig {
  /** Parameter name → default (undefined: required). */
  parameters: Record<string, { default?: string; allowedPattern?: string }>;
  /** Session properties with {{ name }} placeholders, e.g. {"portNumber": "{{ portNumber }}", "type": "LocalPortForwarding"}. */
  properties: Record<string, string>;
}

export interface SandboxConfig {
  region: string;
  targets: Record<string, TargetConfig>;
  documents: Record<string, DocumentConfig>;
  /** How long a disconnected session waits for ResumeSession before it expires. */
  sessionExpiryMs: number;
}

export const DEFAULT_AGENT_VERSION = '3.3.2746.0';
/** The real service keeps a disconnected session for about its idle timeout; 20 minutes is the default there. */
export const DEFAULT_SESSION_EXPIRY_MS = 20 * 60_000;

function fail(path: string, message: string): never {
  throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `sandbox config: ${path} ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function hostPort(value: unknown, path: string): string {
  if (typeof value !== 'string' || !/^[^\s]+:\d{1,5}$/.test(value)) fail(path, `must be "host:port", got ${JSON.stringify(value)}`);
  return value;
}

function stringMap(value: unknown, path: string, each: (v: unknown, p: string) => string): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) fail(path, 'must be an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) out[k] = each(v, `${path}.${k}`);
  return out;
}

/** Validate a config object, or read and validate a JSON file when given a path. */
export function loadSandboxConfig(input: unknown): SandboxConfig {
  let raw = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(readFileSync(input, 'utf8'));
    } catch (err) {
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `sandbox config: cannot read ${input}: ${(err as Error).message}`);
    }
  }
  if (!isObject(raw)) fail('(top level)', 'must be an object');
  if (!isObject(raw.targets)) fail('targets', 'must be an object of target id → target');
  const targets: Record<string, TargetConfig> = {};
  for (const [id, t] of Object.entries(raw.targets)) {
    const path = `targets.${id}`;
    if (id.length < 1 || id.length > 400) fail(path, 'id must be 1–400 characters');
    if (!isObject(t)) fail(path, 'must be an object');
    const agentVersion = t.agentVersion ?? DEFAULT_AGENT_VERSION;
    if (typeof agentVersion !== 'string' || !/^\d+(\.\d+)*$/.test(agentVersion)) fail(`${path}.agentVersion`, 'must be a version such as 3.3.2746.0');
    const remoteHosts: Record<string, Record<string, string>> = {};
    if (t.remoteHosts !== undefined) {
      if (!isObject(t.remoteHosts)) fail(`${path}.remoteHosts`, 'must be an object');
      for (const [host, ports] of Object.entries(t.remoteHosts)) remoteHosts[host] = stringMap(ports, `${path}.remoteHosts.${host}`, hostPort);
    }
    targets[id] = {
      agentVersion,
      ports: stringMap(t.ports, `${path}.ports`, hostPort),
      remoteHosts,
      connected: t.connected === undefined ? true : t.connected === true,
    };
  }
  const documents: Record<string, DocumentConfig> = {};
  if (raw.documents !== undefined) {
    if (!isObject(raw.documents)) fail('documents', 'must be an object');
    for (const [name, d] of Object.entries(raw.documents)) {
      const path = `documents.${name}`;
      if (!isObject(d) || !isObject(d.properties)) fail(path, 'must have "properties"');
      const parameters: DocumentConfig['parameters'] = {};
      if (d.parameters !== undefined) {
        if (!isObject(d.parameters)) fail(`${path}.parameters`, 'must be an object');
        for (const [p, def] of Object.entries(d.parameters)) {
          if (!isObject(def)) fail(`${path}.parameters.${p}`, 'must be an object');
          parameters[p] = {
            ...(typeof def.default === 'string' ? { default: def.default } : {}),
            ...(typeof def.allowedPattern === 'string' ? { allowedPattern: def.allowedPattern } : {}),
          };
        }
      }
      documents[name] = { parameters, properties: stringMap(d.properties, `${path}.properties`, (v, p) => (typeof v === 'string' ? v : fail(p, 'must be a string'))) };
    }
  }
  const expiry = raw.sessionExpiryMs ?? DEFAULT_SESSION_EXPIRY_MS;
  if (typeof expiry !== 'number' || !(expiry > 0)) fail('sessionExpiryMs', 'must be a positive number');
  const region = raw.region ?? 'us-east-1';
  if (typeof region !== 'string') fail('region', 'must be a string');
  return { region, targets, documents, sessionExpiryMs: expiry };
}

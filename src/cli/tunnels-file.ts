import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import type { LocalEndpoint, TunnelSpec } from '../endpoints/index.js';
import { BridgeError, ErrorCode } from '../errors.js';
import { envName } from './run-command.js';

/** Where to reach the SSM API; any field left out falls back to the command line, then the AWS SDK chains. */
export interface AwsSettings {
  region?: string;
  profile?: string;
  endpointUrl?: string;
}

/** One tunnel of a tunnels file, validated. `line` is where its entry starts, for later messages. */
export interface TunnelEntry extends TunnelSpec, AwsSettings {
  line: number;
}

/** `ssm-bridge up -f FILE`: top-level defaults and the tunnels (README "In CI"). */
export interface TunnelsFile {
  defaults: AwsSettings;
  tunnels: TunnelEntry[];
}

const TOP_LEVEL_KEYS = ['tunnels', 'region', 'profile', 'endpointUrl'] as const;
const TUNNEL_KEYS = [
  'name',
  'target',
  'remoteHost',
  'remotePort',
  'localPort',
  'localAddress',
  'localSocket',
  'documentName',
  'parameters',
  'reason',
  'reconnect',
  'sessions',
  'region',
  'profile',
  'endpointUrl',
] as const;
/** A name becomes part of environment variable names (SSM_BRIDGE_<NAME>_LOCAL_PORT). */
const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

export { envName };

/** Read and validate a tunnels file; errors are INVALID_ARGUMENT naming `file:line`. */
export async function readTunnelsFile(path: string): Promise<TunnelsFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `cannot read the tunnels file ${path}: ${why}; check the path given to -f`, { cause: err });
  }
  return parseTunnelsFile(text, path);
}

/** Deeper than any tunnels file needs; the YAML parser recurses, and a hostile file would overflow its stack. */
const MAX_NESTING = 64;

/**
 * Parse a tunnels file (YAML 1.2, so JSON too). Every error names the file and the 1-based line of the
 * offending key or value, e.g. `tunnels.yaml:7: remotePort must be a port number from 1 to 65535 (got "x")`.
 */
export function parseTunnelsFile(text: string, fileName: string): TunnelsFile {
  const lineCounter = new LineCounter();
  if (nestingDepth(text) > MAX_NESTING) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${fileName}: nested more than ${MAX_NESTING} levels deep; a tunnels file is a list of flat mappings`);
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    if (err instanceof RangeError) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${fileName}: nested too deeply to read; a tunnels file is a list of flat mappings`);
    throw err;
  }
  const fail = (offset: number | undefined, message: string): never => {
    const line = offset === undefined ? 1 : lineCounter.linePos(offset).line;
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${fileName}:${line}: ${message}`);
  };
  const at = (node: Node | null | undefined, fallback?: number): number | undefined => node?.range?.[0] ?? fallback;

  const syntax = doc.errors[0];
  if (syntax) fail(syntax.pos[0], `not valid YAML or JSON: ${syntax.message.split('\n')[0]}`);
  const root = doc.contents;
  if (!isMap(root)) fail(at(root as Node | null), 'expected a mapping with a "tunnels" list, e.g. "tunnels:\\n  - name: db\\n    target: i-0123456789abcdef0\\n    remotePort: 5432"');
  const rootMap = root as YAMLMap;

  const defaults: AwsSettings = {};
  let tunnelsNode: Node | undefined;
  let tunnelsKeyOffset: number | undefined;
  for (const pair of rootMap.items as Pair<Node, Node | null>[]) {
    const key = keyOf(pair, fail);
    if (key === 'tunnels') {
      tunnelsNode = pair.value ?? undefined;
      tunnelsKeyOffset = at(pair.key);
    } else if (key === 'region' || key === 'profile' || key === 'endpointUrl') {
      defaults[key] = stringValue(pair, key, fail);
    } else {
      fail(at(pair.key), `unknown key "${key}" (expected one of ${TOP_LEVEL_KEYS.join(', ')})`);
    }
  }
  if (tunnelsNode === undefined && tunnelsKeyOffset === undefined) fail(at(rootMap), 'missing "tunnels": a list of tunnels, each with at least name and target');
  if (!isSeq(tunnelsNode) || tunnelsNode.items.length === 0) fail(at(tunnelsNode, tunnelsKeyOffset), '"tunnels" must be a non-empty list of tunnels');

  const tunnels: TunnelEntry[] = [];
  const byEnvName = new Map<string, string>();
  const localEndpoints = new Map<string, string>();
  for (const item of (tunnelsNode as { items: unknown[] }).items as Node[]) {
    if (!isMap(item)) fail(at(item), 'each tunnel must be a mapping with at least name and target');
    const entry = parseTunnel(item as YAMLMap, fail, at);
    const offset = at(item);
    if (offset !== undefined) entry.line = lineCounter.linePos(offset).line;
    const env = envName(entry.name);
    const clash = byEnvName.get(env);
    if (clash !== undefined) fail(at(item), clash === entry.name ? `tunnel name "${entry.name}" is used twice; names must be unique` : `tunnel names "${clash}" and "${entry.name}" give the same environment variable names (SSM_BRIDGE_${env}_…); rename one`);
    byEnvName.set(env, entry.name);
    const localKey = entry.local.kind === 'unix' ? `unix:${entry.local.path}` : entry.local.port === 0 ? undefined : `tcp:${entry.local.address}:${entry.local.port}`;
    if (localKey) {
      const other = localEndpoints.get(localKey);
      if (other !== undefined) fail(at(item), `tunnel "${entry.name}" listens on the same local ${entry.local.kind === 'unix' ? 'socket' : 'port'} as tunnel "${other}"; choose another`);
      localEndpoints.set(localKey, entry.name);
    }
    tunnels.push(entry);
  }
  return { defaults, tunnels };
}

/** The deepest run of open flow brackets or indentation levels, cheaply over-estimated (strings included). */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (const ch of text) {
    if (ch === '[' || ch === '{') deepest = Math.max(deepest, ++depth);
    else if ((ch === ']' || ch === '}') && depth > 0) depth--;
  }
  let indentLevels = 0;
  for (const line of text.split('\n')) {
    const indent = /^( *)(- )*/.exec(line)![0].length;
    indentLevels = Math.max(indentLevels, Math.floor(indent / 2));
  }
  return Math.max(deepest, indentLevels);
}

type Fail = (offset: number | undefined, message: string) => never;
type At = (node: Node | null | undefined, fallback?: number) => number | undefined;

function parseTunnel(map: YAMLMap, fail: Fail, at: At): TunnelEntry {
  const start = at(map as Node);
  const fields = new Map<string, Pair<Node, Node | null>>();
  for (const pair of map.items as Pair<Node, Node | null>[]) {
    const key = keyOf(pair, fail);
    if (!(TUNNEL_KEYS as readonly string[]).includes(key)) fail(at(pair.key), `unknown key "${key}" in a tunnel (expected one of ${TUNNEL_KEYS.join(', ')})`);
    fields.set(key, pair);
  }
  const str = (key: string): string | undefined => {
    const pair = fields.get(key);
    return pair ? stringValue(pair, key, fail) : undefined;
  };
  const name = str('name');
  if (name === undefined) fail(start, 'a tunnel needs a "name" (letters, digits, "-" and "_")');
  if (!NAME_PATTERN.test(name!)) fail(at(fields.get('name')!.value), `name must start with a letter and hold only letters, digits, "-" and "_" (got ${JSON.stringify(name)})`);
  const target = str('target');
  if (target === undefined) fail(start, `tunnel "${name}" needs a "target" (an instance id such as i-0123456789abcdef0)`);

  const port = (key: string, allowZero: boolean): number | undefined => {
    const pair = fields.get(key);
    if (!pair) return undefined;
    const raw = isScalar(pair.value) ? pair.value.value : null;
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
      const got = isScalar(pair.value) ? JSON.stringify(raw) : pair.value === null ? 'nothing' : 'a list or mapping';
      fail(at(pair.value, at(pair.key)), `${key} must be a port number from ${allowZero ? 0 : 1} to 65535 (got ${got})`);
    }
    return n;
  };
  const remotePort = port('remotePort', false);
  const localPort = port('localPort', true);
  const remoteHost = str('remoteHost');
  const documentName = str('documentName');
  const localSocket = str('localSocket');
  const localAddress = str('localAddress');

  if (documentName === undefined && remotePort === undefined) fail(start, `tunnel "${name}" needs "remotePort" (or "documentName" with "parameters")`);
  if (documentName !== undefined) {
    for (const key of ['remotePort', 'remoteHost']) {
      if (fields.has(key)) fail(at(fields.get(key)!.key), `${key} is not used with documentName; put the port (and host) in "parameters" as the document expects`);
    }
  } else if (fields.has('parameters')) {
    fail(at(fields.get('parameters')!.key), '"parameters" needs "documentName"; with remotePort and remoteHost the document is chosen for you');
  }
  if (localSocket !== undefined) {
    for (const key of ['localPort', 'localAddress']) {
      if (fields.has(key)) fail(at(fields.get(key)!.key), `${key} cannot be combined with localSocket; a tunnel listens on a TCP port or on a unix socket`);
    }
  }
  const parametersPair = fields.get('parameters');
  const local: LocalEndpoint = localSocket !== undefined ? { kind: 'unix', path: localSocket } : { kind: 'tcp', address: localAddress ?? '127.0.0.1', port: localPort ?? 0 };

  const entry: TunnelEntry = { name: name!, target: target!, local, line: 1 };
  if (remotePort !== undefined) entry.remotePort = remotePort;
  if (remoteHost !== undefined) entry.remoteHost = remoteHost;
  if (documentName !== undefined) entry.documentName = documentName;
  if (parametersPair) entry.parameters = parametersValue(parametersPair, fail, at);
  const reconnectPair = fields.get('reconnect');
  if (reconnectPair) {
    const raw = isScalar(reconnectPair.value) ? reconnectPair.value.value : undefined;
    if (typeof raw !== 'boolean') fail(at(reconnectPair.value, at(reconnectPair.key)), `reconnect must be true or false (got ${raw === undefined ? 'a list or mapping' : JSON.stringify(raw)})`);
    entry.reconnect = raw as boolean;
  }
  const sessionsPair = fields.get('sessions');
  if (sessionsPair) {
    const raw = isScalar(sessionsPair.value) ? sessionsPair.value.value : undefined;
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > 16) fail(at(sessionsPair.value, at(sessionsPair.key)), `sessions must be a whole number from 1 to 16 (got ${raw === undefined ? 'a list or mapping' : JSON.stringify(raw)})`);
    entry.sessions = raw as number;
  }
  for (const key of ['reason', 'region', 'profile', 'endpointUrl'] as const) {
    const value = str(key);
    if (value !== undefined) entry[key] = value;
  }
  return entry;
}

function keyOf(pair: Pair<Node, Node | null>, fail: Fail): string {
  const key = pair.key as Node | null;
  if (!isScalar(key) || typeof key.value !== 'string') fail(key?.range?.[0], 'keys must be plain names such as "remotePort"');
  return (key as { value: string }).value;
}

function stringValue(pair: Pair<Node, Node | null>, key: string, fail: Fail): string {
  const value = pair.value;
  if (!isScalar(value) || typeof value.value !== 'string' || value.value.trim() === '') {
    const got = isScalar(value) ? JSON.stringify(value.value) : value === null ? 'nothing' : 'a list or mapping';
    fail((value ?? pair.key)?.range?.[0], `${key} must be a non-empty string (got ${got})`);
  }
  return (value as { value: string }).value;
}

/** Document parameters: a map of name → string, number or list of those (as `--parameters`). */
function parametersValue(pair: Pair<Node, Node | null>, fail: Fail, at: At): Record<string, string[]> {
  const value = pair.value;
  if (!isMap(value)) fail(at(value, at(pair.key)), 'parameters must be a mapping such as {portNumber: ["5432"]}');
  const out: Record<string, string[]> = {};
  for (const p of (value as YAMLMap).items as Pair<Node, Node | null>[]) {
    const key = keyOf(p, fail);
    const items = isSeq(p.value) ? (p.value.items as Node[]) : [p.value as Node];
    const strings: string[] = [];
    for (const item of items) {
      if (!isScalar(item) || (typeof item.value !== 'string' && typeof item.value !== 'number')) {
        fail(at(item, at(p.key)), `parameters.${key} must be a string or a list of strings`);
      }
      strings.push(String((item as { value: string | number }).value));
    }
    out[key] = strings;
  }
  return out;
}

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger as PinoLogger } from 'pino';
import { finalError } from './logging.js';
import type { LocalEndpoint } from '../endpoints/index.js';
import { BridgeError, ErrorCode } from '../errors.js';

/**
 * The environment-variable form of a tunnel name: `read-db` → `READ_DB`. Here rather than in tunnels-file.ts
 * (which re-exports it), so that `forward` does not load yaml.
 */
export function envName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** What the command learns about one tunnel. */
export interface TunnelFacts {
  name: string;
  target: string;
  sessionId: string;
  endpoint: LocalEndpoint;
}

/**
 * The command after `--` (yargs `populate--`), or undefined when there is no `--`. A `--` followed by
 * nothing is a mistake worth stopping for: a CI script lost its command.
 */
export function commandFromArgs(rest: Array<string | number> | undefined): string[] | undefined {
  if (rest === undefined) return undefined;
  if (rest.length === 0) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, 'nothing follows "--"; give the command to run inside the tunnel, e.g. -- psql -h 127.0.0.1');
  return rest.map(String);
}

/** Shells' conventions for a command that could not be started. */
const NOT_FOUND_STATUS = 127;
const NOT_EXECUTABLE_STATUS = 126;

/** A signal's exit status, as shells report it: 128 + its number (SIGTERM → 143). */
export function signalExitStatus(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

function endpointVars(prefix: string, facts: TunnelFacts): Record<string, string> {
  const vars: Record<string, string> = { [`${prefix}SESSION_ID`]: facts.sessionId, [`${prefix}TARGET`]: facts.target };
  if (facts.endpoint.kind === 'tcp') {
    vars[`${prefix}LOCAL_ADDRESS`] = facts.endpoint.address;
    vars[`${prefix}LOCAL_PORT`] = String(facts.endpoint.port);
  } else {
    vars[`${prefix}LOCAL_SOCKET`] = facts.endpoint.path;
  }
  return vars;
}

/**
 * The variables describing the tunnels (README "In CI"). `forward` sets SSM_BRIDGE_LOCAL_PORT and friends;
 * `up` sets SSM_BRIDGE_<NAME>_LOCAL_PORT and friends per tunnel, SSM_BRIDGE_TUNNELS (the names), and the
 * unprefixed ones too when there is a single tunnel.
 */
export function tunnelEnv(tunnels: TunnelFacts[], named: boolean): Record<string, string> {
  if (!named) return endpointVars('SSM_BRIDGE_', tunnels[0]!);
  const vars: Record<string, string> = { SSM_BRIDGE_TUNNELS: tunnels.map((t) => t.name).join(',') };
  for (const t of tunnels) Object.assign(vars, endpointVars(`SSM_BRIDGE_${envName(t.name)}_`, t));
  if (tunnels.length === 1) Object.assign(vars, endpointVars('SSM_BRIDGE_', tunnels[0]!));
  return vars;
}

export interface RunningCommand {
  /** Resolves with the exit status: its code, 128+n after signal n, 127 (not found) or 126 (not executable). */
  readonly exited: Promise<number>;
  /** Pass a signal on; ignored once the command has exited. */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs: number): Promise<number>;
}

/**
 * Run `argv` with stdio inherited and the tunnel variables added to our environment (inherited SSM_BRIDGE_*
 * variables of an outer run are dropped, so none describes a tunnel that is not this one).
 */
export function runCommand(argv: string[], vars: Record<string, string>, logger: PinoLogger): RunningCommand {
  const [file, ...args] = argv;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SSM_BRIDGE_')) env[k] = v;
  Object.assign(env, vars);
  const child = spawn(file!, args, { stdio: 'inherit', env });
  let done = false;
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // an error after start (e.g. kill failed): the exit event follows
      done = true;
      const status = err.code === 'ENOENT' ? NOT_FOUND_STATUS : NOT_EXECUTABLE_STATUS;
      finalError(logger, { command: file, exitCode: status }, `cannot run ${JSON.stringify(file)}: ${err.code === 'ENOENT' ? 'command not found' : err.message}`);
      resolve(status);
    });
    child.once('exit', (code, signal) => {
      done = true;
      const status = code ?? (signal ? signalExitStatus(signal) : 1);
      logger.debug({ event: 'command-exited', code, signal, status }, 'the command exited');
      resolve(status);
    });
  });
  logger.debug({ event: 'command-started', command: file, pid: child.pid }, 'running the command');
  const kill = (signal: NodeJS.Signals): void => {
    if (done || child.pid === undefined) return;
    try {
      child.kill(signal);
    } catch {
      // it exited meanwhile
    }
  };
  // Should we exit first (a second signal while stopping), the command must not outlive us.
  process.once('exit', () => kill('SIGKILL'));
  return {
    exited,
    kill,
    stop: async (graceMs) => {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

const PLACEHOLDER = /\$\{[^}]*\}|\{\{([\w.-]+)\}\}|\{([\w.-]+)\}/g;
const FIELDS = ['host', 'port', 'socket'] as const;

/**
 * The command's arguments with the tunnels' placeholders filled in (README "Exec mode"): `{host}`, `{port}`,
 * `{socket}` for `forward` (and `up` with one tunnel), `{<name>.host}` … per tunnel in `up`. `{{port}}` is a
 * literal `{port}`; `${…}` (shell syntax) and braces around anything else (`{}`, JSON, `{a,b}`) are left as they
 * are. An unknown placeholder, or `{socket}` of a TCP tunnel, is an error: the runner calls this once with the
 * configured endpoints, before any session starts.
 */
export function expandPlaceholders(argv: string[], tunnels: Array<{ name: string; endpoint: LocalEndpoint }>, named: boolean): string[] {
  const valueOf = (tunnel: { name: string; endpoint: LocalEndpoint }, field: (typeof FIELDS)[number], written: string): string => {
    const e = tunnel.endpoint;
    if (field === 'socket' && e.kind === 'unix') return e.path;
    if (field === 'host' && e.kind === 'tcp') return e.address;
    if (field === 'port' && e.kind === 'tcp') return String(e.port);
    const has = e.kind === 'unix' ? 'a unix socket ({socket})' : 'a TCP listener ({host}, {port})';
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `the command's ${written}: ${named ? `tunnel "${tunnel.name}"` : 'the tunnel'} is ${has}`);
  };
  return argv.map((arg) =>
    arg.replace(PLACEHOLDER, (match: string, escaped: string | undefined, word: string | undefined) => {
      if (escaped !== undefined) return `{${escaped}}`;
      if (word === undefined) return match; // ${…}
      const dot = word.lastIndexOf('.');
      const name = dot < 0 ? undefined : word.slice(0, dot);
      const field = (dot < 0 ? word : word.slice(dot + 1)) as (typeof FIELDS)[number];
      const tunnel = name === undefined ? (tunnels.length === 1 ? tunnels[0] : undefined) : named ? tunnels.find((t) => t.name === name) : undefined;
      if (!FIELDS.includes(field) || !tunnel) {
        const known = named ? tunnels.flatMap((t) => FIELDS.map((f) => `{${t.name}.${f}}`)).slice(0, 6).join(', ') : '{host}, {port}, {socket}';
        const why = name === undefined && FIELDS.includes(field) ? `with ${tunnels.length} tunnels, name one: {<name>.${field}}` : `known: ${known}${named && tunnels.length * 3 > 6 ? ', …' : ''}`;
        throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `unknown placeholder ${match} in the command (${why}); write {${match}} for a literal ${match}`);
      }
      return valueOf(tunnel, field, match);
    }),
  );
}

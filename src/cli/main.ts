#!/usr/bin/env node
import { hideBin } from 'yargs/helpers';
import yargs, { type Argv } from 'yargs';
import type { Logger } from 'pino';
import { BridgeError, ErrorCode } from '../errors.js';
import { preloadAwsSdk } from '../session/ssm-api.js';
import { exitCodeFor, ExitCode } from './exit-codes.js';
import type { LogFormat } from './logging.js';
import { printable } from './printable.js';
import { explainUsageError } from './usage-errors.js';

// The SDK warns on stderr about its future Node support; our stderr is for our own one-line messages.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// A stderr whose reader went away (`ssm-bridge forward … 2>&1 | head -1` in a script) fails every later write
// with EPIPE: unheard, that error killed the tunnel (exit 1). Our messages then have nowhere to go; the work goes on.
process.stderr.on('error', () => {});

/*
 * Each command's module (and so its dependencies: the sandbox, yaml, the SDK, ws, pino) is imported only when
 * that command runs, which main() decides once yargs has parsed (see README, design notes: start-up time).
 */
type Run = (args: never, logger: Logger) => Promise<void>;
const COMMANDS: Record<string, () => Promise<Run>> = {
  forward: async () => (await import('./commands/forward.js')).runForward,
  up: async () => (await import('./commands/up.js')).runUp,
  proxy: async () => (await import('./commands/proxy.js')).runProxy,
  sandbox: async () => (await import('./commands/sandbox.js')).runSandbox,
  'install-plugin': async () => (await import('./commands/install-plugin.js')).runInstallPlugin,
};
const loading = new Map<string, Promise<Run>>();
function loadCommand(name: string): Promise<Run> | undefined {
  const load = COMMANDS[name];
  if (!load) return undefined;
  let run = loading.get(name);
  if (!run) {
    run = load();
    run.catch(() => {}); // reported by whoever awaits it
    loading.set(name, run);
  }
  return run;
}

/** Defined by the bundle (scripts/build-bundle.mjs), from which yargs cannot find package.json; from dist/src, yargs reads it. */
declare const SSM_BRIDGE_VERSION: string | undefined;
const BUNDLED_VERSION = typeof SSM_BRIDGE_VERSION === 'string' ? SSM_BRIDGE_VERSION : undefined;

export interface GlobalOptions {
  region?: string | undefined;
  profile?: string | undefined;
  endpointUrl?: string | undefined;
  logLevel: string;
  logFormat: LogFormat;
  resumeTimeout: string;
}

function withGlobals<T>(y: Argv<T>) {
  return y
    .option('region', { type: 'string', describe: 'AWS region (default: AWS_REGION or the profile)' })
    .option('profile', { type: 'string', describe: 'AWS profile from ~/.aws/config' })
    .option('endpoint-url', { type: 'string', describe: 'SSM API endpoint, e.g. the sandbox http://127.0.0.1:PORT' })
    .option('log-level', { type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'] })
    .option('log-format', { type: 'string', default: 'pretty', choices: ['json', 'pretty'] })
    .option('resume-timeout', { type: 'string', default: '10m', describe: 'how long to keep resuming after a drop (0 disables), e.g. 90s, 10m' });
}

/** Options of the commands that hold tunnels open (`forward`, `up`), for CI. */
function withTunnelOptions<T>(y: Argv<T>) {
  return y
    .option('ready-file', { type: 'string', describe: 'once every listener is up, write this JSON file (atomically) describing the tunnels' })
    .option('stats-interval', { type: 'string', describe: 'log traffic stats this often, e.g. 30s (0: never)' })
    .option('reconnect', {
      type: 'boolean',
      default: true,
      describe: 'when a session ends (expiry, idle timeout, agent restart), start a new one behind the same listener; --no-reconnect exits with the session instead',
    });
}

/**
 * yargs renders the command's whole help text each time it runs a command, to have it ready should the command
 * call showHelp() (ours never do): tens of milliseconds, plus string-width's set-up on its first use (~60 ms,
 * see scripts/build-bundle.mjs). Turned off through yargs's internals; should those change, this does nothing.
 */
function skipHelpCache(parser: Argv<unknown>): void {
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (parser as unknown as Internals).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

/** yargs leaves `--` out when nothing follows it; keep it as an empty command, which is reported. */
function withCommand<T extends object>(args: T, argv: string[]): T {
  return (args as { '--'?: unknown })['--'] === undefined && argv.includes('--') ? { ...args, '--': [] } : args;
}

/** The run's log format, known before yargs has parsed (its errors are reported in that format too). */
function logFormatIn(argv: string[]): LogFormat {
  for (let i = argv.length - 1; i >= 0; i--) {
    const inline = /^--log-format=(.*)$/.exec(argv[i]!);
    if (inline) return inline[1] === 'json' ? 'json' : 'pretty';
    if (argv[i] === '--log-format') return argv[i + 1] === 'json' ? 'json' : 'pretty';
  }
  return 'pretty';
}

/**
 * Print one line and exit with the code for the error; the stack only at debug level. With --log-format json the
 * line is a record shaped like the logger's (`event: "error"`), so that every stderr line parses.
 */
function fail(err: unknown, debug: boolean, format: LogFormat): never {
  const known = err instanceof BridgeError;
  const message = known ? err.message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
  const exitCode = known ? exitCodeFor(err.code) : ExitCode.INTERNAL;
  const stack = debug && err instanceof Error ? err.stack : undefined;
  if (format === 'json') {
    const record = { level: 50, time: Date.now(), pid: process.pid, event: 'error', ...(known ? { code: err.code } : {}), exitCode, ...(stack ? { stack } : {}), msg: message };
    process.stderr.write(`${JSON.stringify(record)}\n`);
  } else {
    process.stderr.write(`ssm-bridge: ${printable(message)}\n`);
    if (stack) process.stderr.write(`${stack}\n`);
  }
  process.exit(exitCode);
}

/** Options whose value may look like a negative number: yargs would read `-5s` as the flags -5 and -s. */
const VALUE_OPTIONS = new Set(['--resume-timeout', '--stats-interval', '--local-port', '--remote-port', '--port', '--sessions']);

/** `--resume-timeout -5s` → `--resume-timeout=-5s`, so the option's own check says what is wrong with it. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    if (VALUE_OPTIONS.has(arg) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

export async function main(rawArgv: string[]): Promise<void> {
  const argv = rawArgv[0] === 'plugin' ? rawArgv : joinNegativeValues(rawArgv);
  // `plugin` takes the official session-manager-plugin's positional arguments (JSON, an empty profile,
  // its own --version), which are not ours to parse with yargs.
  if (argv[0] === 'plugin') {
    try {
      await (await import('./commands/plugin.js')).runPlugin(argv.slice(1));
    } catch (err) {
      fail(err, process.env.SSM_BRIDGE_LOG_LEVEL === 'debug' || process.env.SSM_BRIDGE_LOG_LEVEL === 'trace', process.env.SSM_BRIDGE_LOG_FORMAT === 'json' ? 'json' : 'pretty');
    }
    return;
  }
  let format = logFormatIn(argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv);
  let debug = argv.includes('--log-level=debug') || argv.includes('--log-level=trace') || /--log-level\s+(debug|trace)/.test(argv.join(' '));
  const parser = yargs(argv)
    .scriptName('ssm-bridge')
    .usage('$0 <command> [options]')
    .command(
      'forward <target>',
      'forward a local port (or unix socket) to a port on the node or a host beyond it',
      (y) =>
        withTunnelOptions(withGlobals(y))
          .positional('target', { type: 'string', demandOption: true, describe: 'instance id (i-…), managed instance (mi-…) or other target' })
          .option('remote-port', { type: 'string', describe: 'port on the node, or on --remote-host' })
          .option('remote-host', { type: 'string', describe: 'host beyond the node (uses AWS-StartPortForwardingSessionToRemoteHost)' })
          .option('local-port', { type: 'string', default: '0', describe: 'local port; 0 picks a free one' })
          .option('local-address', { type: 'string', default: '127.0.0.1', describe: 'local address to bind' })
          .option('local-socket', { type: 'string', describe: 'listen on this unix socket (mode 0600) instead of TCP' })
          .option('document-name', { type: 'string', describe: 'any port-forwarding document' })
          .option('parameters', { type: 'string', describe: 'the document Parameters as JSON, e.g. {"portNumber":["5432"]}' })
          .option('reason', { type: 'string' })
          .option('sessions', { type: 'string', default: '1', describe: 'stripe connections over this many sessions (1–16): each session is paced to ~1 MB/s by the agent' })
          .usage('$0 forward <target> [options] [-- <command> [args...]]')
          .example('$0 forward i-0123456789abcdef0 --remote-port 5432 --local-port 5432', 'a database on the node, on localhost:5432')
          .example('$0 forward i-0123456789abcdef0 --remote-host db.internal --remote-port 5432', 'a host beyond the node, on a free local port')
          .example('$0 forward i-0123456789abcdef0 --remote-port 5432 -- psql -h {host} -p {port} -c "select 1"', 'run a command through the tunnel, then exit with its status')
          .example('$0 forward i-0123456789abcdef0 --remote-port 5432 --sessions 4', 'spread connections over 4 sessions (each paced to ~1 MB/s by the agent)')
          .example('$0 forward i-0123456789abcdef0 --remote-port 80 --endpoint-url http://127.0.0.1:4566', 'through `ssm-bridge sandbox --port 4566`')
          .epilogue('With "-- <command>": run the command once the tunnel listens, then terminate the session and exit with its status.'),
    )
    .command(
      'up',
      'open every tunnel of a tunnels file (YAML or JSON), each its own session, in one process',
      (y) =>
        withTunnelOptions(withGlobals(y))
          .option('file', { alias: 'f', type: 'string', demandOption: true, describe: 'the tunnels file, e.g. tunnels.yaml (see README "In CI")' })
          .usage('$0 up -f <tunnels.yaml> [options] [-- <command> [args...]]')
          .example('$0 up -f tunnels.yaml --ready-file /tmp/tunnels.json', 'every tunnel of the file; the JSON file appears once all listen')
          .example('$0 up -f tunnels.yaml -- psql -h {db.host} -p {db.port}', 'run a command through the tunnels ({<name>.port}: tunnel <name>\'s local port)')
          .epilogue('With "-- <command>": run the command once every tunnel listens, then terminate the sessions and exit with its status.'),
    )
    .command(
      'proxy <target>',
      'bridge stdin/stdout to a port on the node (for ssh ProxyCommand)',
      (y) =>
        withGlobals(y)
          .positional('target', { type: 'string', demandOption: true })
          .example('ssh -o ProxyCommand="$0 proxy %h --port %p" ec2-user@i-0123456789abcdef0', 'ssh through Session Manager (or ProxyCommand in ~/.ssh/config)')
          .example('$0 proxy i-0123456789abcdef0 --remote-host db.internal --port 5432', 'stdin/stdout to a host beyond the node')
          .option('port', { type: 'string', default: '22', describe: 'remote port (on the node, or on --remote-host)' })
          .option('remote-host', { type: 'string', describe: 'host beyond the node (uses AWS-StartPortForwardingSessionToRemoteHost)' })
          .option('document-name', { type: 'string', describe: 'default AWS-StartSSHSession' })
          .option('parameters', { type: 'string', describe: 'the document Parameters as JSON' })
          .option('reason', { type: 'string' })
          .option('log-level', { type: 'string', default: 'warn', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'] }),
    )
    .command(
      'sandbox',
      'run a local emulator of the SSM API, the message gateway and the agent',
      (y) =>
        y
          .example('$0 sandbox', 'the emulator with a demo target; it prints the environment and a forward line to copy')
          .example('$0 sandbox --config targets.json --port 4566 --pacing', 'your own targets and ports, paced like the real agent')
          .option('port', { type: 'string', default: '0', describe: 'port to listen on (0 picks a free one)' })
          .option('host', { type: 'string', default: '127.0.0.1' })
          .option('config', { type: 'string', describe: 'JSON file with targets and documents' })
          .option('unpaced', { type: 'boolean', default: false, describe: 'drop the agent\'s 1 ms pause after each 1 KiB message (speed tests); paced is what AWS does' })
          .option('seed', { type: 'string', default: '1', describe: 'seed for fault injection (an integer)' })
          .option('log-level', { type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'] })
          .option('log-format', { type: 'string', default: 'pretty', choices: ['json', 'pretty'] }),
    )
    .command(
      'install-plugin',
      'write a session-manager-plugin shim, so that aws ssm start-session (and the tools built on it) run on ssm-bridge',
      (y) =>
        y
          .option('dir', { type: 'string', describe: 'where to write it (default ~/.local/share/ssm-bridge/bin; put it first on PATH)' })
          .option('uninstall', { type: 'boolean', default: false, describe: 'remove the shim (only one ssm-bridge wrote)' })
          .option('log-level', { type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'] })
          .option('log-format', { type: 'string', default: 'pretty', choices: ['json', 'pretty'] }),
    )
    .command('plugin', 'stand in for session-manager-plugin: takes its arguments as the AWS CLI gives them (see README "Using ssm-bridge with the AWS CLI")')
    // Everything after `--` is the command to run inside the tunnel(s), untouched by our parser.
    .parserConfiguration({ 'populate--': true })
    .demandCommand(1, 'name a command: forward, up, proxy, sandbox or install-plugin')
    .completion('completion', 'print a shell completion script (bash, zsh): ssm-bridge completion >> ~/.bashrc')
    .strict()
    .help()
    .fail((msg, err) => {
      if (err) throw err;
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, explainUsageError(msg ?? '', argv));
    });
  skipHelpCache(parser);
  if (BUNDLED_VERSION === undefined) parser.version();
  else parser.version(BUNDLED_VERSION);
  // Start reading the command's module (the first word that is not an option, when it names one) and the
  // logger's while yargs parses; a wrong guess only costs the read.
  const guess = argv.find((a) => !a.startsWith('-'));
  if (guess === 'forward' || guess === 'up' || guess === 'proxy') preloadAwsSdk();
  if (guess) loadCommand(guess);
  const logging = import('./logging.js');
  logging.catch(() => {});
  try {
    const parsed = (await parser.parseAsync()) as Record<string, unknown> & { _: Array<string | number> };
    debug = ['debug', 'trace'].includes(String(parsed.logLevel));
    format = parsed.logFormat === 'json' ? 'json' : 'pretty';
    const name = String(parsed._[0]);
    const run = loadCommand(name);
    if (!run) throw new Error(`no such command: ${name}`);
    const [command, { createLogger }] = await Promise.all([run, logging]);
    const logger = createLogger(String(parsed.logLevel), parsed.logFormat as LogFormat);
    const args = name === 'forward' || name === 'up' ? withCommand(parsed, argv) : parsed;
    await command(args as never, logger);
  } catch (err) {
    fail(err, debug, format);
  }
}

main(hideBin(process.argv)).catch((err: unknown) => fail(err, false, 'pretty'));

import type { Logger as PinoLogger } from 'pino';
import { describeRemote, PortForwarder, type TunnelSpec } from '../endpoints/index.js';
import { BridgeError, ErrorCode } from '../errors.js';
import { createSsmApi, type SessionStatus, type SsmApi } from '../session/index.js';
import { logStatus, warnExposure } from './commands/common.js';
import { announce } from './logging.js';
import { checkAwsOptions, checkTarget } from './options.js';
import { removeReadyFile, removeReadyFileSync, writeReadyFile, type ReadyTunnel } from './ready-file.js';
import { expandPlaceholders, runCommand, signalExitStatus, tunnelEnv, type RunningCommand } from './run-command.js';
import { startStatsReporter, type StatsReporter } from './stats.js';
import type { AwsSettings } from './tunnels-file.js';

/** One tunnel to open: the tunnel spec `forward` and `up` build from their options, and where the API is. */
export interface TunnelRequest extends TunnelSpec {
  aws: AwsSettings;
}

export interface RunTunnelsOptions {
  logger: PinoLogger;
  resumeTimeoutMs: number;
  /** `up`: tunnels are named in messages, log records, the listening line and the environment. */
  named: boolean;
  /** Everything after `--`: run it once every listener is up, then end with its exit status. */
  command?: string[];
  readyFile?: string;
  /** 0 or undefined: no stats. */
  statsIntervalMs?: number;
}

interface OpenTunnel {
  request: TunnelRequest;
  forwarder: PortForwarder;
  remote: string;
}

/** How long a command has to exit after SIGTERM when its tunnel died, before SIGKILL. */
const COMMAND_STOP_GRACE_MS = 10_000;
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** After a signal during start, how long the start may still take to finish (and its sessions be terminated). */
const SIGNAL_DURING_START_GRACE_MS = 3_000;

/*
 * The run, one state field (transitions only in `setState`):
 *
 *   starting --all up--> serving --------------------(tunnel closed / signal)--> stopping --> exit
 *      |                    |                                                       ^
 *      |                    +--command given--> commanding --(command exited)-------+
 *      +--a tunnel failed / signal meanwhile----------------------------------------+
 *
 * Signals: while starting, remembered; serving, stop (exit 0); commanding, passed to the command;
 * stopping, a second one exits at once (130).
 */
type RunState = 'starting' | 'serving' | 'commanding' | 'stopping';

/**
 * Open every tunnel (each its own session, resumed on its own), report readiness (listening lines and
 * records, ready file), then serve until a signal, or run the command and end with its status. Never
 * returns: exits the process, or throws the BridgeError that decides the exit code.
 */
export async function runTunnels(requests: TunnelRequest[], options: RunTunnelsOptions): Promise<never> {
  const { logger, named } = options;
  const command = options.command && options.command.length > 0 ? options.command : undefined;
  let state: RunState = 'starting';
  let pendingSignal: NodeJS.Signals | undefined;
  let child: RunningCommand | undefined;
  let stopServing: ((signal: NodeJS.Signals) => void) | undefined;
  const setState = (next: RunState): void => {
    switch (next) {
      case 'serving':
      case 'commanding':
        if (state === 'starting' || state === 'serving') state = next;
        return;
      case 'stopping':
        state = 'stopping';
        return;
      case 'starting':
        return;
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    switch (state) {
      case 'starting':
        if (pendingSignal) process.exit(130);
        pendingSignal = signal;
        // Sessions still starting are terminated as soon as their start returns; a start that hangs must not
        // hold the process: one signal ends it within seconds.
        setTimeout(() => {
          logger.warn({ event: 'stopping', signal }, 'still starting; exiting without waiting for the session');
          process.exit(command ? signalExitStatus(signal) : 0);
        }, SIGNAL_DURING_START_GRACE_MS).unref();
        return;
      case 'serving':
        stopServing?.(signal);
        return;
      case 'commanding':
        logger.debug({ event: 'signal', signal }, 'passing the signal to the command');
        child?.kill(signal);
        return;
      case 'stopping':
        process.exit(130);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  // A wrong placeholder in the command fails before any session starts.
  if (command) expandPlaceholders(command, requests.map((r) => ({ name: r.name, endpoint: r.local })), named);
  if (options.readyFile) await removeReadyFile(options.readyFile);
  const apis = new Map<string, Promise<SsmApi>>();
  const apiFor = (aws: AwsSettings): Promise<SsmApi> => {
    checkAwsOptions(aws);
    const key = JSON.stringify([aws.region, aws.profile, aws.endpointUrl]);
    let api = apis.get(key);
    if (!api) {
      api = createSsmApi({ ...(aws.region ? { region: aws.region } : {}), ...(aws.profile ? { profile: aws.profile } : {}), ...(aws.endpointUrl ? { endpointUrl: aws.endpointUrl } : {}), logger });
      apis.set(key, api);
    }
    return api;
  };
  const destroyApis = async (): Promise<void> => {
    for (const api of apis.values()) (await api.catch(() => undefined))?.destroy();
  };
  const loggerFor = (request: TunnelRequest): PinoLogger => (named ? logger.child({ tunnel: request.name }) : logger);
  for (const request of requests) {
    checkTarget(request.target);
    checkAwsOptions(request.aws);
    // The listener's exposure is told once it is bound (an address that is not this machine's is an error instead).
    warnExposure(loggerFor(request), { endpointUrl: request.aws.endpointUrl });
  }

  // Start all at once; if any fails, terminate the sessions of the others before reporting it.
  const settled = await Promise.allSettled(
    requests.map(async (request): Promise<OpenTunnel> => {
      const tunnelLogger = loggerFor(request);
      const { name: _name, aws, reconnect, ...destination } = request;
      const forwarder = await PortForwarder.start(
        { ...destination, api: await apiFor(aws), logger: tunnelLogger, reconnect: reconnect ?? true, session: { resumeTimeoutMs: options.resumeTimeoutMs } },
        (status) => logStatus(tunnelLogger, status),
      );
      const remote = describeRemote(request);
      return { request, forwarder, remote };
    }),
  );
  const tunnels = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  let stats: StatsReporter | undefined;
  const closeAll = async (): Promise<void> => {
    stats?.stop();
    await Promise.all(
      tunnels.map(async (t) => {
        await t.forwarder.close().catch(() => {});
        if (named) logger.debug({ event: 'tunnel-closed', tunnel: t.request.name, sessionId: t.forwarder.sessionId }, 'session terminated');
      }),
    );
    await destroyApis();
  };

  const failedIndex = settled.findIndex((s) => s.status === 'rejected');
  if (failedIndex >= 0) {
    setState('stopping');
    const failed = requests[failedIndex]!;
    const reason = (settled[failedIndex] as PromiseRejectedResult).reason as unknown;
    if (tunnels.length > 0) logger.info({ event: 'stopping', tunnels: tunnels.map((t) => t.request.name) }, `tunnel ${failed.name} failed to start; terminating the sessions of the others`);
    await closeAll();
    throw nameError(reason, failed, named);
  }
  if (pendingSignal) {
    setState('stopping');
    await closeAll();
    process.exit(command ? signalExitStatus(pendingSignal) : 0);
  }

  // Every listener is up and every session started: tell people and machines.
  for (const t of tunnels) {
    const endpoint = t.forwarder.endpoint;
    if (endpoint.kind === 'tcp') warnExposure(loggerFor(t.request), { listenAddress: endpoint.address, what: 'the forward' });
    // The readiness announcement, one per listener: a bare `Listening on …` line in the pretty format, a record
    // with --log-format json; at every log level but silent.
    announce(
      loggerFor(t.request),
      {
        event: 'listening',
        sessionId: t.forwarder.sessionId,
        ...(t.forwarder.sessionIds.length > 1 ? { sessionIds: [...t.forwarder.sessionIds] } : {}),
        mode: t.forwarder.mode,
        ...(endpoint.kind === 'tcp' ? { localAddress: endpoint.address, localPort: endpoint.port } : { localSocket: endpoint.path }),
        remote: t.remote,
        ...(named ? { target: t.request.target } : {}),
      },
      `Listening on ${t.forwarder.describe()} -> ${t.remote}${named ? ` (${t.request.name})` : ''}`,
    );
  }
  for (const t of tunnels) {
    const ids = t.forwarder.sessionIds;
    if (ids.length > 1) loggerFor(t.request).info({ event: 'striping', sessionIds: [...ids] }, `connections go over ${ids.length} sessions: ${ids.join(', ')}`);
  }
  if (options.readyFile) {
    const readyFile = options.readyFile;
    try {
      await writeReadyFile(readyFile, { pid: process.pid, tunnels: tunnels.map(readyEntry) });
    } catch (err) {
      setState('stopping');
      await closeAll();
      throw err;
    }
    process.once('exit', () => removeReadyFileSync(readyFile));
    logger.debug({ event: 'ready-file', path: readyFile }, 'wrote the ready file');
    // A replaced session: the file names the session carrying each tunnel now (rewritten atomically, in order).
    let rewrite = Promise.resolve();
    for (const t of tunnels) {
      t.forwarder.on('status', (status: SessionStatus) => {
        if (status.type !== 'replaced') return;
        rewrite = rewrite
          .then(() => (state === 'stopping' ? undefined : writeReadyFile(readyFile, { pid: process.pid, tunnels: tunnels.map(readyEntry) })))
          .catch((err: Error) => logger.warn({ event: 'ready-file', err: err.message }, 'could not rewrite the ready file'));
      });
    }
  }
  if (options.statsIntervalMs) {
    stats = startStatsReporter(
      tunnels.map((t) => ({ name: t.request.name, forwarder: t.forwarder })),
      options.statsIntervalMs,
      logger,
    );
  }

  // The first tunnel to close ends the run.
  const firstClosed = Promise.race(
    tunnels.map(async (t) => {
      const err = await t.forwarder.closed();
      return { tunnel: t, err };
    }),
  );

  if (!command) {
    setState('serving');
    const stopped = new Promise<NodeJS.Signals>((resolve) => (stopServing = resolve));
    const outcome = await Promise.race([stopped.then((signal) => ({ signal }) as const), firstClosed.then((closed) => ({ closed }) as const)]);
    setState('stopping');
    if ('signal' in outcome) {
      logger.info({ event: 'stopping', signal: outcome.signal }, tunnels.length > 1 ? 'terminating the sessions' : 'terminating the session');
      await closeAll();
      process.exit(0);
    }
    await closeAll();
    throw closedError(outcome.closed.tunnel, outcome.closed.err, named);
  }

  setState('commanding');
  child = runCommand(
    expandPlaceholders(
      command,
      tunnels.map((t) => ({ name: t.request.name, endpoint: t.forwarder.endpoint })),
      named,
    ),
    tunnelEnv(
      tunnels.map((t) => ({ name: t.request.name, target: t.request.target, sessionId: t.forwarder.sessionId, endpoint: t.forwarder.endpoint })),
      named,
    ),
    logger,
  );
  const outcome = await Promise.race([child.exited.then((status) => ({ status }) as const), firstClosed.then((closed) => ({ closed }) as const)]);
  setState('stopping');
  if ('status' in outcome) {
    logger.info({ event: 'stopping', status: outcome.status }, `the command exited with status ${outcome.status}; terminating the session${tunnels.length > 1 ? 's' : ''}`);
    await closeAll();
    process.exit(outcome.status);
  }
  const err = closedError(outcome.closed.tunnel, outcome.closed.err, named);
  logger.warn({ event: 'stopping', err: err.message }, 'the tunnel closed; stopping the command');
  const status = await child.stop(COMMAND_STOP_GRACE_MS);
  logger.debug({ event: 'command-stopped', status }, 'the command stopped');
  await closeAll();
  throw err;
}

function readyEntry(t: OpenTunnel): ReadyTunnel {
  const endpoint = t.forwarder.endpoint;
  return {
    name: t.request.name,
    target: t.request.target,
    ...(endpoint.kind === 'tcp' ? { localAddress: endpoint.address, localPort: endpoint.port } : { localSocket: endpoint.path }),
    sessionId: t.forwarder.sessionId,
    ...(t.forwarder.sessionIds.length > 1 ? { sessionIds: [...t.forwarder.sessionIds] } : {}),
  };
}

/** In `up`, every error names its tunnel: `tunnel "db" (i-0123…): target … is not connected …`. */
function nameError(err: unknown, request: TunnelRequest, named: boolean): unknown {
  if (!named || !(err instanceof BridgeError)) return err;
  return new BridgeError(err.code, `tunnel "${request.name}" (${request.target}): ${err.message}`, { cause: err });
}

function closedError(tunnel: OpenTunnel, err: BridgeError | undefined, named: boolean): BridgeError {
  const error = err ?? new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${tunnel.forwarder.sessionId} ended`);
  return nameError(error, tunnel.request, named) as BridgeError;
}

import { spawn } from 'node:child_process';
import type { Logger as PinoLogger } from 'pino';
import { PortForwarder, startStdioProxy, type LocalEndpoint } from '../../endpoints/index.js';
import { BridgeError, ErrorCode } from '../../errors.js';
import { CLIENT_VERSION, type PortSessionProperties } from '../../protocol/index.js';
import { BridgeSession, createSsmApi, type SsmApi } from '../../session/index.js';
import type { LogFormat } from '../logging.js';
import { checkAwsOptions, parseDurationMs, parsePort } from '../options.js';
import { parsePluginArgs, pluginMode, type PluginInvocation, type PluginRequest } from '../plugin-args.js';
import { findFallbackPlugin } from '../plugin-shim.js';
import { signalExitStatus } from '../run-command.js';
import { logStatus, warnExposure } from './common.js';

/*
 * `ssm-bridge plugin <response> <region> StartSession <profile> <request> <endpoint>`: stands in for the official
 * session-manager-plugin (install-plugin writes the shim the AWS CLI runs). The caller has started the session;
 * we never call StartSession, only ResumeSession and TerminateSession, with its region, profile and endpoint.
 * No options of ours in argv (the AWS CLI builds it): settings come from SSM_BRIDGE_LOG_LEVEL,
 * SSM_BRIDGE_LOG_FORMAT and SSM_BRIDGE_RESUME_TIMEOUT.
 */

/** Set for the official plugin we run: should it be a shim of ours after all, the loop ends at once. */
const IN_FALLBACK_ENV = 'SSM_BRIDGE_IN_FALLBACK';
const TERMINATE_TIMEOUT_MS = 5_000;
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'silent']);

export interface PluginSettings {
  logLevel: string;
  logFormat: LogFormat;
  resumeTimeoutMs: number;
}

/** Our settings, from the environment: the AWS CLI passes no options of ours. */
export function pluginSettings(env: NodeJS.ProcessEnv = process.env): PluginSettings {
  const logLevel = env.SSM_BRIDGE_LOG_LEVEL || 'warn';
  if (!LOG_LEVELS.has(logLevel)) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `SSM_BRIDGE_LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')} (got ${JSON.stringify(logLevel)})`);
  const logFormat = env.SSM_BRIDGE_LOG_FORMAT || 'pretty';
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `SSM_BRIDGE_LOG_FORMAT must be json or pretty (got ${JSON.stringify(logFormat)})`);
  const resumeTimeoutMs = parseDurationMs(env.SSM_BRIDGE_RESUME_TIMEOUT || '10m', 'SSM_BRIDGE_RESUME_TIMEOUT');
  return { logLevel, logFormat, resumeTimeoutMs };
}

/** Run the plugin; exits the process, or throws the BridgeError that decides the exit code. */
export async function runPlugin(args: string[]): Promise<void> {
  const invocation = parsePluginArgs(args);
  if (invocation.kind === 'installed') {
    // Install scripts run the bare plugin and look for "installed successfully".
    process.stdout.write('\nssm-bridge stands in for the Session Manager plugin: it was installed successfully. Use the AWS CLI to start a session.\n\n');
    return;
  }
  if (invocation.kind === 'version') {
    // Above 1.2.497.0, so the AWS CLI hands the response over in AWS_SSM_START_SESSION_RESPONSE, not in argv
    // (README "Using ssm-bridge with the AWS CLI"); the version the handshake reports to the agent too.
    process.stdout.write(`${CLIENT_VERSION}\n`);
    return;
  }
  const settings = pluginSettings();
  const { createLogger } = await import('../logging.js');
  const logger = createLogger(settings.logLevel, settings.logFormat);
  if (pluginMode(invocation.request) === 'fallback') return runFallback(args, invocation, logger);
  // As the official plugin does: the token need not stay in our environment (children, /proc/<pid>/environ).
  if (invocation.responseEnv !== undefined) delete process.env[invocation.responseEnv];
  return runPortSession(invocation, invocation.request!, settings, logger);
}

function apiFor(invocation: Extract<PluginInvocation, { kind: 'session' }>, logger: PinoLogger): Promise<SsmApi> {
  const aws = { ...(invocation.region ? { region: invocation.region } : {}), ...(invocation.endpointUrl ? { endpointUrl: invocation.endpointUrl } : {}) };
  checkAwsOptions(aws);
  warnExposure(logger, { endpointUrl: invocation.endpointUrl });
  return createSsmApi({ logger, ...aws, ...(invocation.profile ? { profile: invocation.profile } : {}) });
}

/** TerminateSession, bounded; failures only logged (we are on our way out). */
async function terminateQuietly(api: SsmApi, sessionId: string, logger: PinoLogger): Promise<void> {
  try {
    await api.terminateSession(sessionId, { signal: AbortSignal.timeout(TERMINATE_TIMEOUT_MS) });
  } catch (err) {
    logger.debug({ err: (err as Error).message }, 'TerminateSession failed');
  }
}

async function runPortSession(invocation: Extract<PluginInvocation, { kind: 'session' }>, request: PluginRequest, settings: PluginSettings, logger: PinoLogger): Promise<never> {
  const { sessionId } = invocation.credentials;
  const api = apiFor(invocation, logger);
  api.catch(() => {}); // reported below

  // Until the session is served, a signal terminates it by its id (the open then fails); after, `stop` ends it.
  let stop: (() => Promise<void>) | undefined;
  let stopping: Promise<never> | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    logger.info({ event: 'stopping', signal }, 'terminating the session');
    const ending = stop ? stop() : api.then((a) => terminateQuietly(a, sessionId, logger));
    stopping = ending.then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  const ssm = await api;
  let session: BridgeSession;
  try {
    session = await BridgeSession.open({ api: ssm, credentials: invocation.credentials, logger, resumeTimeoutMs: settings.resumeTimeoutMs });
  } catch (err) {
    // A custom document that is not a Port document: known only from the handshake, once the token is spent.
    if (err instanceof BridgeError && err.code === ErrorCode.HANDSHAKE_FAILED && /supports Port sessions only/.test(err.message)) {
      throw new BridgeError(
        ErrorCode.INVALID_DOCUMENT,
        `document ${request.documentName} is not a Port document (${err.message.replace(/^.*not /, '')} session); ssm-bridge hands only AWS's shell and command documents to the official plugin — run this one with the official session-manager-plugin (a PATH without the ssm-bridge shim)`,
        { cause: err },
      );
    }
    throw err;
  }
  session.on('status', (status) => logStatus(logger, status));
  const properties = session.handshake.properties;

  if (properties.type !== 'LocalPortForwarding') {
    // Stream mode (AWS-StartSSHSession and the like): stdin/stdout carry the bytes as they are, nothing else.
    const port = Number(request.parameters.portNumber?.[0] ?? properties.portNumber ?? 22);
    const proxy = await startStdioProxy({
      api: ssm,
      target: request.target,
      port,
      ...(request.documentName ? { documentName: request.documentName } : {}),
      openSession: session,
      logger,
    });
    stop = () => proxy.stop({ urgent: true });
    const err = await proxy.done;
    if (stopping) return stopping;
    ssm.destroy();
    if (err) throw err;
    process.exit(0);
  }

  let local: LocalEndpoint;
  try {
    local = localEndpointFor(properties, request);
  } catch (err) {
    await session.terminate();
    throw err;
  }
  const forwarder = await PortForwarder.start({ api: ssm, target: request.target, local, logger, openSession: session });
  const endpoint = forwarder.endpoint;
  // The official plugin's lines, on stdout: tools wait for "Port N opened" and read N from it.
  const opened = endpoint.kind === 'tcp' ? `Port ${endpoint.port} opened for sessionId ${sessionId}.` : `Unix socket ${endpoint.path} opened for sessionId ${sessionId}.`;
  process.stdout.write(`\nStarting session with SessionId: ${sessionId}\n${opened}\nWaiting for connections...\n`);
  logger.info({ event: 'listening', sessionId, mode: forwarder.mode, ...(endpoint.kind === 'tcp' ? { address: endpoint.address, port: endpoint.port } : { socket: endpoint.path }) }, 'listening');
  stop = async () => {
    await forwarder.close();
    process.stdout.write(`\n\nExiting session with sessionId: ${sessionId}.\n\n`);
    ssm.destroy();
  };
  const err = await forwarder.closed();
  // Closed by the signal's stop(), which exits 0 once it is done.
  if (stopping) return stopping;
  await forwarder.close();
  ssm.destroy();
  throw err ?? new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${sessionId} ended`);
}

/**
 * The listener the document asks for: its session properties (resolved by the service from localPortNumber,
 * localConnectionType and localUnixSocket), else the request's localPortNumber, else any free port. On
 * 127.0.0.1, as the official plugin (it binds localhost).
 */
export function localEndpointFor(properties: PortSessionProperties, request: PluginRequest): LocalEndpoint {
  if (properties.localConnectionType === 'unix') {
    const path = properties.localUnixSocket;
    if (typeof path !== 'string' || path === '') throw new BridgeError(ErrorCode.INVALID_DOCUMENT, 'the session asks for a unix socket (localConnectionType unix) but names none (localUnixSocket)');
    return { kind: 'unix', path };
  }
  const raw = properties.localPortNumber || request.parameters.localPortNumber?.[0] || '0';
  return { kind: 'tcp', address: '127.0.0.1', port: parsePort(raw, 'localPortNumber', true) };
}

/** A shell or command session: the official plugin's job. Run it with our arguments and environment. */
async function runFallback(args: string[], invocation: Extract<PluginInvocation, { kind: 'session' }>, logger: PinoLogger): Promise<never> {
  const what = invocation.request?.documentName ? `document ${invocation.request.documentName} starts a shell or command session` : 'this is a shell session (no document)';
  let plugin: string | undefined;
  let problem: unknown;
  try {
    plugin = process.env[IN_FALLBACK_ENV] ? undefined : findFallbackPlugin();
  } catch (err) {
    problem = err;
  }
  if (plugin === undefined) {
    // The session exists (the AWS CLI started it): end it rather than leave it open until its idle timeout.
    const api = await apiFor(invocation, logger).catch(() => undefined);
    if (api) {
      await terminateQuietly(api, invocation.credentials.sessionId, logger);
      api.destroy();
    }
    if (problem) throw problem;
    throw new BridgeError(
      ErrorCode.INVALID_DOCUMENT,
      `${what}, and ssm-bridge serves Port sessions only (port forwarding, SSH); shells and commands need the official session-manager-plugin: install it, or set SSM_BRIDGE_FALLBACK_PLUGIN to its path`,
    );
  }
  logger.debug({ event: 'fallback', plugin }, 'handing the session to the official plugin');
  const child = spawn(plugin, args, { stdio: 'inherit', env: { ...process.env, [IN_FALLBACK_ENV]: '1' } });
  // The terminal's signals reach the whole process group, the official plugin included, which handles them
  // (a shell passes Ctrl-C on); we only must not die of them. Signals sent to us alone are passed on.
  for (const signal of ['SIGINT', 'SIGQUIT', 'SIGTSTP'] as NodeJS.Signals[]) process.on(signal, () => {});
  for (const signal of ['SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) process.on(signal, () => child.kill(signal));
  const status = await new Promise<number>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`ssm-bridge: cannot run the official plugin ${JSON.stringify(plugin)}: ${err.message}\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? signalExitStatus(signal) : 1)));
  });
  process.exit(status);
}


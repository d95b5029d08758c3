import type { Logger as PinoLogger } from 'pino';
import { createSsmApi, type SessionStatus, type SsmApi } from '../../session/index.js';
import type { GlobalOptions } from '../main.js';
import { checkAwsOptions, parseDurationMs } from '../options.js';

export async function apiFromArgs(args: GlobalOptions, logger: PinoLogger): Promise<SsmApi> {
  checkAwsOptions(args);
  return createSsmApi({
    logger,
    ...(args.region ? { region: args.region } : {}),
    ...(args.profile ? { profile: args.profile } : {}),
    ...(args.endpointUrl !== undefined ? { endpointUrl: args.endpointUrl } : {}),
  });
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/** Whether a host (name or address, IPv6 with or without brackets) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOST.test(host);
}

/**
 * Warnings for what exposes more than the user may think: a listener reachable from other machines (anyone who
 * reaches it reaches the remote service), and an http:// endpoint that is not this machine (the session token
 * travels in clear).
 */
export function warnExposure(logger: PinoLogger, settings: { listenAddress?: string | undefined; endpointUrl?: string | undefined; what?: string }): void {
  const address = settings.listenAddress;
  if (address !== undefined && !isLoopbackHost(address)) {
    logger.warn({ event: 'exposed-listener', address }, `${settings.what ?? 'the listener'} on ${address} is reachable from other machines, without authentication; use 127.0.0.1 unless that is what you want`);
  }
  if (settings.endpointUrl !== undefined) {
    try {
      const url = new URL(settings.endpointUrl);
      if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
        logger.warn({ event: 'cleartext-endpoint', host: url.host }, `--endpoint-url ${url.protocol}//${url.host} is not encrypted and not this machine: credentials' signatures and session tokens cross the network in clear`);
      }
    } catch {
      // reported by the SDK when it is used
    }
  }
}

export function resumeTimeoutFromArgs(args: GlobalOptions): number {
  return parseDurationMs(args.resumeTimeout, '--resume-timeout');
}

/** Status events become log records with an `event` field, for people and for `--log-format json`. */
export function logStatus(logger: PinoLogger, status: SessionStatus): void {
  switch (status.type) {
    case 'connected':
      logger.debug({ event: 'connected', sessionId: status.sessionId, agentVersion: status.agentVersion }, 'session connected');
      return;
    case 'disconnected':
      logger.warn({ event: 'disconnected', sessionId: status.sessionId, reason: status.reason }, 'connection to the service lost; resuming');
      return;
    case 'resuming':
      logger.info({ event: 'resuming', attempt: status.attempt, delayMs: status.delayMs }, 'resuming session');
      return;
    case 'resumed':
      logger.info({ event: 'resumed', downtimeMs: status.downtimeMs, messagesResent: status.messagesResent, attempts: status.attempts }, 'session resumed');
      return;
    case 'closed':
      logger.debug({ event: 'closed', sessionId: status.sessionId, ...(status.error ? { error: status.error.message } : {}) }, 'session closed');
      return;
    case 'replacing':
      // The first attempt follows the "session ended; starting a new one" warning at once.
      if (status.attempt > 1) logger.info({ event: 'replacing', sessionId: status.sessionId, attempt: status.attempt, delayMs: status.delayMs }, `starting a new session failed; trying again in ${status.delayMs} ms`);
      return;
    case 'replaced':
      logger.warn(
        { event: 'replaced', sessionId: status.sessionId, previousSessionId: status.previousSessionId, downtimeMs: status.downtimeMs, attempts: status.attempts, lostConnections: status.lostConnections },
        `session ${status.sessionId} replaces ${status.previousSessionId}; the listener stayed up${status.lostConnections > 0 ? `, ${status.lostConnections} open connection${status.lostConnections === 1 ? ' was' : 's were'} lost` : ''}`,
      );
      return;
  }
}

/**
 * First SIGINT/SIGTERM (and SIGHUP, which ssh sends its ProxyCommand) runs `stop` then exits 0;
 * a second one exits at once.
 */
export function onStopSignals(stop: () => Promise<void>, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']): void {
  let stopping = false;
  for (const signal of signals) {
    process.on(signal, () => {
      if (stopping) process.exit(130);
      stopping = true;
      stop().then(
        () => process.exit(0),
        () => process.exit(0),
      );
    });
  }
}

import type { Logger as PinoLogger } from 'pino';
import { createSsmApi, type SessionStatus, type SsmApi } from '../../session/index.js';
import type { GlobalOptions } from '../main.js';
import { parseDurationMs } from '../options.js';

export async function apiFromArgs(args: GlobalOptions, logger: PinoLogger): Promise<SsmApi> {
  return createSsmApi({
    logger,
    ...(args.region ? { region: args.region } : {}),
    ...(args.profile ? { profile: args.profile } : {}),
    ...(args.endpointUrl ? { endpointUrl: args.endpointUrl } : {}),
  });
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

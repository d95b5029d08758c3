import type { Logger as PinoLogger } from 'pino';
import { PortForwarder, type LocalEndpoint } from '../../endpoints/index.js';
import { BridgeError, ErrorCode } from '../../errors.js';
import type { GlobalOptions } from '../main.js';
import { parseParameters, parsePort } from '../options.js';
import { apiFromArgs, logStatus, onStopSignals, resumeTimeoutFromArgs } from './common.js';

export interface ForwardArgs extends GlobalOptions {
  target: string;
  remotePort?: number;
  remoteHost?: string;
  localPort: number;
  localAddress: string;
  localSocket?: string;
  documentName?: string;
  parameters?: string;
  reason?: string;
}

export async function runForward(args: ForwardArgs, logger: PinoLogger): Promise<void> {
  const parameters = parseParameters(args.parameters);
  if (args.remotePort === undefined && !args.documentName) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, '--remote-port is required (or --document-name with --parameters)');
  }
  const remotePort = args.remotePort === undefined ? undefined : parsePort(args.remotePort, '--remote-port', false);
  const local: LocalEndpoint = args.localSocket
    ? { kind: 'unix', path: args.localSocket }
    : { kind: 'tcp', address: args.localAddress, port: parsePort(args.localPort, '--local-port', true) };
  const resumeTimeoutMs = resumeTimeoutFromArgs(args);
  const api = await apiFromArgs(args);
  const forwarder = await PortForwarder.start(
    {
      api,
      target: args.target,
      ...(remotePort !== undefined ? { remotePort } : {}),
      ...(args.remoteHost ? { remoteHost: args.remoteHost } : {}),
      ...(args.documentName ? { documentName: args.documentName } : {}),
      ...(parameters ? { parameters } : {}),
      ...(args.reason ? { reason: args.reason } : {}),
      local,
      logger,
      session: { resumeTimeoutMs },
    },
    (status) => logStatus(logger, status),
  );
  const remote = args.documentName ? `${args.target} (${args.documentName})` : `${args.remoteHost ?? args.target}:${remotePort}`;
  const endpoint = forwarder.endpoint;
  // The readiness line: always, on stderr, whatever the log level.
  process.stderr.write(`Listening on ${forwarder.describe()} -> ${remote}\n`);
  logger.info(
    {
      event: 'listening',
      sessionId: forwarder.session.sessionId,
      mode: forwarder.mode,
      ...(endpoint.kind === 'tcp' ? { address: endpoint.address, port: endpoint.port } : { socket: endpoint.path }),
      remote,
    },
    'listening',
  );
  onStopSignals(async () => {
    logger.info({ event: 'stopping' }, 'terminating the session');
    await forwarder.close();
    api.destroy();
  });
  const err = await forwarder.closed();
  api.destroy();
  if (err) throw err;
  process.exit(0);
}

import type { Logger as PinoLogger } from 'pino';
import type { LocalEndpoint } from '../../endpoints/index.js';
import { BridgeError, ErrorCode } from '../../errors.js';
import type { GlobalOptions } from '../main.js';
import { parseParameters, parsePort, parseSessions } from '../options.js';
import { runTunnels } from '../tunnel-group.js';
import { commandFromArgs } from '../run-command.js';
import { statsIntervalFromArgs } from '../stats.js';
import { resumeTimeoutFromArgs } from './common.js';

export interface ForwardArgs extends GlobalOptions {
  target: string;
  /** As typed: parsePort reports what was given. */
  remotePort?: number | string;
  remoteHost?: string;
  localPort: number | string;
  localAddress: string;
  localSocket?: string;
  documentName?: string;
  parameters?: string;
  reason?: string;
  readyFile?: string;
  statsInterval?: string;
  /** false with --no-reconnect. */
  reconnect?: boolean;
  sessions?: string;
  /** Everything after `--`: the command to run inside the tunnel. */
  '--'?: Array<string | number>;
}

export async function runForward(args: ForwardArgs, logger: PinoLogger): Promise<void> {
  const parameters = parseParameters(args.parameters);
  if (args.remotePort === undefined && !args.documentName) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, '--remote-port is required (or --document-name with --parameters)');
  }
  const remotePort = args.remotePort === undefined ? undefined : parsePort(args.remotePort, '--remote-port', false);
  if (args.localSocket && (String(args.localPort) !== '0' || args.localAddress !== '127.0.0.1')) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `--local-socket cannot be combined with ${String(args.localPort) !== '0' ? '--local-port' : '--local-address'}; a forward listens on a TCP port or on a unix socket`);
  }
  const local: LocalEndpoint = args.localSocket
    ? { kind: 'unix', path: args.localSocket }
    : { kind: 'tcp', address: args.localAddress, port: parsePort(args.localPort, '--local-port', true) };
  const resumeTimeoutMs = resumeTimeoutFromArgs(args);
  const statsIntervalMs = statsIntervalFromArgs(args.statsInterval);
  const command = commandFromArgs(args['--']);
  await runTunnels(
    [
      {
        name: args.target,
        target: args.target,
        ...(remotePort !== undefined ? { remotePort } : {}),
        ...(args.remoteHost ? { remoteHost: args.remoteHost } : {}),
        ...(args.documentName ? { documentName: args.documentName } : {}),
        ...(parameters ? { parameters } : {}),
        ...(args.reason ? { reason: args.reason } : {}),
        local,
        reconnect: args.reconnect !== false,
        sessions: parseSessions(args.sessions ?? '1', '--sessions'),
        aws: {
          ...(args.region ? { region: args.region } : {}),
          ...(args.profile ? { profile: args.profile } : {}),
          ...(args.endpointUrl !== undefined ? { endpointUrl: args.endpointUrl } : {}),
        },
      },
    ],
    {
      logger,
      resumeTimeoutMs,
      named: false,
      ...(command ? { command } : {}),
      ...(args.readyFile ? { readyFile: args.readyFile } : {}),
      ...(statsIntervalMs ? { statsIntervalMs } : {}),
    },
  );
}

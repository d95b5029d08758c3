import type { Logger as PinoLogger } from 'pino';
import { startStdioProxy } from '../../endpoints/index.js';
import { BridgeError, ErrorCode } from '../../errors.js';
import type { GlobalOptions } from '../main.js';
import { checkTarget, parseParameters, parsePort } from '../options.js';
import { apiFromArgs, logStatus, onStopSignals, resumeTimeoutFromArgs, warnExposure } from './common.js';

export interface ProxyArgs extends GlobalOptions {
  target: string;
  port: number | string;
  remoteHost?: string;
  documentName?: string;
  parameters?: string;
  reason?: string;
}

export async function runProxy(args: ProxyArgs, logger: PinoLogger): Promise<void> {
  const port = parsePort(args.port, '--port', false);
  if (args.remoteHost && args.documentName) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, '--remote-host picks the document (AWS-StartPortForwardingSessionToRemoteHost); give it or --document-name, not both');
  }
  // The shortcut: a port-forwarding session to a host beyond the node, bridged to stdio like an SSH session.
  const documentName = args.remoteHost ? 'AWS-StartPortForwardingSessionToRemoteHost' : args.documentName;
  const parameters = args.remoteHost ? { host: [args.remoteHost], portNumber: [String(port)] } : parseParameters(args.parameters);
  const resumeTimeoutMs = resumeTimeoutFromArgs(args);
  checkTarget(args.target);
  warnExposure(logger, { endpointUrl: args.endpointUrl });
  const api = await apiFromArgs(args, logger);
  const proxy = await startStdioProxy({
    api,
    target: args.target,
    port,
    ...(documentName ? { documentName } : {}),
    ...(parameters ? { parameters } : {}),
    ...(args.reason ? { reason: args.reason } : {}),
    logger,
    session: { resumeTimeoutMs },
    onStatus: (status) => logStatus(logger, status),
  });
  onStopSignals(async () => {
    await proxy.stop({ urgent: true });
    api.destroy();
  });
  const err = await proxy.done;
  api.destroy();
  if (err) throw err;
  process.exit(0);
}

import type { Logger as PinoLogger } from 'pino';
import { startStdioProxy } from '../../endpoints/index.js';
import type { GlobalOptions } from '../main.js';
import { checkTarget, parseParameters, parsePort } from '../options.js';
import { apiFromArgs, logStatus, onStopSignals, resumeTimeoutFromArgs, warnExposure } from './common.js';

export interface ProxyArgs extends GlobalOptions {
  target: string;
  port: number;
  documentName?: string;
  parameters?: string;
  reason?: string;
}

export async function runProxy(args: ProxyArgs, logger: PinoLogger): Promise<void> {
  const parameters = parseParameters(args.parameters);
  const port = parsePort(args.port, '--port', false);
  const resumeTimeoutMs = resumeTimeoutFromArgs(args);
  checkTarget(args.target);
  warnExposure(logger, { endpointUrl: args.endpointUrl });
  const api = await apiFromArgs(args, logger);
  const proxy = await startStdioProxy({
    api,
    target: args.target,
    port,
    ...(args.documentName ? { documentName: args.documentName } : {}),
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

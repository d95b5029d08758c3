import type { Logger as PinoLogger } from 'pino';
import type { GlobalOptions } from '../main.js';
import { runTunnels, type TunnelRequest } from '../tunnel-group.js';
import { readTunnelsFile } from '../tunnels-file.js';
import { commandFromArgs } from '../run-command.js';
import { statsIntervalFromArgs } from '../stats.js';
import { resumeTimeoutFromArgs } from './common.js';

export interface UpArgs extends GlobalOptions {
  file: string;
  readyFile?: string;
  statsInterval?: string;
  /** false with --no-reconnect. */
  reconnect?: boolean;
  '--'?: Array<string | number>;
}

/**
 * `ssm-bridge up -f tunnels.yaml`: every tunnel of the file, each its own session, in one process.
 * region / profile / endpointUrl: the tunnel's own, else the command line, else the file's defaults.
 */
export async function runUp(args: UpArgs, logger: PinoLogger): Promise<void> {
  const resumeTimeoutMs = resumeTimeoutFromArgs(args);
  const statsIntervalMs = statsIntervalFromArgs(args.statsInterval);
  const command = commandFromArgs(args['--']);
  const file = await readTunnelsFile(args.file);
  const requests: TunnelRequest[] = file.tunnels.map(({ line: _line, region: ownRegion, profile: ownProfile, endpointUrl: ownEndpoint, ...spec }) => {
    const region = ownRegion ?? args.region ?? file.defaults.region;
    const profile = ownProfile ?? args.profile ?? file.defaults.profile;
    const endpointUrl = ownEndpoint ?? args.endpointUrl ?? file.defaults.endpointUrl;
    // --no-reconnect on the command line turns it off for every tunnel; a tunnel's own `reconnect` wins otherwise.
    const reconnect = args.reconnect === false ? false : (spec.reconnect ?? true);
    return { ...spec, reconnect, aws: { ...(region ? { region } : {}), ...(profile ? { profile } : {}), ...(endpointUrl !== undefined ? { endpointUrl } : {}) } };
  });
  logger.debug({ event: 'tunnels-file', path: args.file, tunnels: requests.map((r) => r.name) }, 'read the tunnels file');
  await runTunnels(requests, {
    logger,
    resumeTimeoutMs,
    named: true,
    ...(command ? { command } : {}),
    ...(args.readyFile ? { readyFile: args.readyFile } : {}),
    ...(statsIntervalMs ? { statsIntervalMs } : {}),
  });
}

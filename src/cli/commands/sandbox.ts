import type { Logger as PinoLogger } from 'pino';
import { DEMO_OLD_AGENT_TARGET, DEMO_TARGET, SANDBOX_CREDENTIALS, startDemoServices, startSandbox, type DemoServices } from '../../sandbox/index.js';
import { BridgeError, ErrorCode } from '../../errors.js';
import { parsePort } from '../options.js';
import { onStopSignals, warnExposure } from './common.js';

export interface SandboxArgs {
  port: string | number;
  host: string;
  config?: string;
  unpaced: boolean;
  seed: string | number;
  logLevel?: string;
  logFormat?: string;
}

/** `ssm-bridge sandbox`: the emulator in the foreground, with the demo target unless a config is given. */
export async function runSandbox(args: SandboxArgs, logger: PinoLogger): Promise<void> {
  const port = parsePort(args.port, '--port', true);
  const seed = Number(args.seed);
  if (String(args.seed).trim() === '' || !Number.isSafeInteger(seed)) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `--seed must be an integer (got ${JSON.stringify(args.seed)})`);
  let demo: DemoServices | undefined;
  let config: unknown = args.config;
  if (config === undefined) {
    demo = await startDemoServices();
    config = demo.config;
  }
  warnExposure(logger, { listenAddress: args.host, what: 'the sandbox (an unauthenticated control API, and destinations on this machine)' });
  const sandbox = await startSandbox({ host: args.host, port, config, ...(args.unpaced ? { paced: false } : {}), seed, logger });
  const targets = Object.keys(sandbox.config.targets);
  const firstTarget = targets[0];
  const firstPort = firstTarget ? Object.keys(sandbox.config.targets[firstTarget]?.ports ?? {})[0] : undefined;
  const example = demo ? `${DEMO_TARGET} --remote-port 80` : `${firstTarget ?? '<target>'} --remote-port ${firstPort ?? '<port>'}`;
  // For people: the json format gets the sandbox-listening record only, silent nothing.
  if (args.logFormat !== 'json' && args.logLevel !== 'silent') {
    process.stderr.write(
      [
        `ssm-bridge sandbox listening on ${sandbox.endpoint}`,
        sandbox.paced
          ? 'agent: paced like AWS (1 KiB per message, 1 ms apart: about 1 MB/s per session); --unpaced for speed tests'
          : 'agent: unpaced (no 1 ms pause between messages): faster than AWS; drop --unpaced to see real pacing',
        `targets: ${targets.join(', ')}${demo ? `  (${DEMO_TARGET}: port 80 a web page, port 7 echo; ${DEMO_OLD_AGENT_TARGET}: the same on an old agent)` : ''}`,
        '',
        'In another shell:',
        `  export AWS_ACCESS_KEY_ID=${SANDBOX_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${SANDBOX_CREDENTIALS.secretAccessKey} AWS_REGION=${sandbox.config.region} AWS_DEFAULT_REGION=${sandbox.config.region}`,
        `  ssm-bridge forward ${example} --endpoint-url ${sandbox.endpoint}`,
        '',
        `Faults: curl -X POST ${sandbox.endpoint}/_sandbox/faults -d '{"dropRate":0.01}'   sessions: curl ${sandbox.endpoint}/_sandbox/sessions`,
        'Ctrl-C stops.',
        '',
      ].join('\n'),
    );
  }
  logger.info({ event: 'sandbox-listening', endpoint: sandbox.endpoint, port: sandbox.port }, 'sandbox listening');
  onStopSignals(async () => {
    await sandbox.close();
    await demo?.close();
  }, ['SIGINT', 'SIGTERM']);
  await new Promise<never>(() => {});
}

import { SSMClient, StartSessionCommand } from '@aws-sdk/client-ssm';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { countHeader } from './cli.js';
import { ENV, REMOTE_PORTS, stop, TARGET, withSandbox } from './cli-harness.js';
import { within } from './servers.js';
import { MiB, toMBps, type BenchRow } from './types.js';

/*
 * The official session-manager-plugin in the same seat as `ssm-bridge proxy`: stdin/stdout onto an
 * AWS-StartSSHSession session against the same unpaced sandbox, so the two rows compare the clients alone.
 * The plugin is not part of this repository: SSM_BRIDGE_OFFICIAL_PLUGIN names a binary built elsewhere
 * (docs/BENCHMARKS.md says how); without it the row is skipped.
 */

const PLUGIN_ENV = 'SSM_BRIDGE_OFFICIAL_PLUGIN';

/** Why the plugin rows cannot run here, or undefined. */
function noPlugin(): string | undefined {
  const path = process.env[PLUGIN_ENV];
  if (path === undefined || path === '') return `set ${PLUGIN_ENV} to a session-manager-plugin binary`;
  if (!existsSync(path)) return `${PLUGIN_ENV}=${path} does not exist`;
  return undefined;
}

/**
 * Remote → stdout through the plugin, the way the AWS CLI runs it: StartSession, then the plugin with the
 * response. Timed like the `proxy/remote → stdout` row, from before the session starts to the last byte.
 */
async function pluginDownload(plugin: string, bytes: number): Promise<number> {
  return withSandbox(async (endpoint) => {
    const ssm = new SSMClient({ endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
    const request = { Target: TARGET, DocumentName: 'AWS-StartSSHSession', Parameters: { portNumber: [REMOTE_PORTS.source] } };
    const started = performance.now();
    let response;
    try {
      response = await within(ssm.send(new StartSessionCommand(request)), 10_000, 'StartSession');
    } finally {
      ssm.destroy();
    }
    const { SessionId, StreamUrl, TokenValue } = response;
    const child = spawn(plugin, [JSON.stringify({ SessionId, StreamUrl, TokenValue }), 'us-east-1', 'StartSession', '', JSON.stringify(request), endpoint], {
      env: ENV,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.on('error', () => {});
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-2000)));
    try {
      child.stdin.write(countHeader(bytes));
      // The plugin prints this line on stdout before the session's bytes.
      const banner = Buffer.byteLength(`\nStarting session with SessionId: ${SessionId}\n`);
      let got = 0;
      const received = new Promise<void>((resolvePromise, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= banner + bytes) resolvePromise();
        });
        child.stdout.once('end', () => reject(new Error(`plugin stdout ended after ${got} bytes, banner included (exit ${child.exitCode}): ${stderr}`)));
        child.once('error', reject);
      });
      await within(received, 30_000 + (bytes / 1e6) * 1000, `${bytes} bytes out of the plugin`);
      return toMBps(bytes, performance.now() - started);
    } finally {
      await stop(child);
    }
  });
}

export const rows: BenchRow[] = [
  {
    group: 'proxy',
    name: 'remote → stdout, official plugin',
    unit: 'MB/s',
    ceiling: 'ceiling/tcp loopback, node pipe',
    note: `64 MiB, session-manager-plugin at $${PLUGIN_ENV} (StartSession included, as the proxy row includes its own)`,
    skip: noPlugin,
    run: () => pluginDownload(process.env[PLUGIN_ENV]!, 64 * MiB),
  },
];

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sshClientOptions, startSshd, type LocalSshd } from '../lib/sshd.js';
import { CLI, ENV, TARGET, withSandbox } from './cli-harness.js';
import { within } from './servers.js';
import { MiB, toMBps, type BenchRow } from './types.js';

/*
 * Real OpenSSH scp to a real sshd on 127.0.0.1, through `ssm-bridge proxy` as ProxyCommand (the sandbox maps
 * the target's port 22 to the sshd), and straight to the sshd for comparison. The figure is what `time scp`
 * shows: spawn → exit, so the SSH handshake (and through the proxy, the session's start) is in it.
 */

const FILE_BYTES = 32 * MiB;
const SCP_TIMEOUT_MS = 120_000;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Runs scp with `args`; ms from spawn to a zero exit. Its stderr (and the proxy's) is only kept for errors. */
async function timedScp(args: string[]): Promise<number> {
  const started = performance.now();
  const child = spawn('scp', args, { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', reject);
  });
  try {
    const code = await within(exited, SCP_TIMEOUT_MS, 'scp');
    if (code !== 0) throw new Error(`scp exited ${code}: ${stderr.slice(-500)}`);
    return performance.now() - started;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** A fresh sshd, for the duration of `body`; stopping it removes its directory (and the files copied in it). */
async function withSshd<T>(body: (sshd: LocalSshd) => Promise<T>): Promise<T> {
  const sshd = await startSshd();
  try {
    return await body(sshd);
  } finally {
    await sshd.stop();
  }
}

/** One 32 MiB random file copied up or down, through the proxy or directly; MB/s, after checking the copy's SHA-256. */
function scpRun(direction: 'upload' | 'download', route: 'proxy' | 'direct'): Promise<number> {
  return withSshd(async (sshd) => {
    // sshd runs on this machine: the "remote" side of the copy is a local path too.
    const original = join(sshd.dir, 'original.bin');
    const copy = join(sshd.dir, 'copy.bin');
    const data = randomBytes(FILE_BYTES);
    writeFileSync(original, data);
    const copyTo = async (host: string, options: string[]): Promise<number> => {
      const remote = (path: string): string => `${sshd.user}@${host}:${path}`;
      const ms = await timedScp([...options, '-q', ...(direction === 'upload' ? [original, remote(copy)] : [remote(original), copy])]);
      if (sha256(readFileSync(copy)) !== sha256(data)) throw new Error(`scp ${direction}: the copy's SHA-256 differs from the original's`);
      return toMBps(FILE_BYTES, ms);
    };
    if (route === 'direct') return copyTo('127.0.0.1', sshClientOptions(sshd, { port: sshd.port }));
    return withSandbox(
      (endpoint) => copyTo(TARGET, sshClientOptions(sshd, { proxyCommand: [process.execPath, CLI, 'proxy', TARGET, '--port', '22', '--endpoint-url', endpoint] })),
      { '22': `127.0.0.1:${sshd.port}` },
    );
  });
}

export const rows: BenchRow[] = [
  { group: 'proxy', name: 'scp upload', unit: 'MB/s', ceiling: 'proxy/scp upload, direct', note: '32 MiB file, scp through `ssm-bridge proxy` as ProxyCommand to a local sshd, spawn → exit', run: () => scpRun('upload', 'proxy') },
  { group: 'proxy', name: 'scp download', unit: 'MB/s', ceiling: 'proxy/scp download, direct', note: 'the same, remote → local', run: () => scpRun('download', 'proxy') },
  { group: 'proxy', name: 'scp upload, direct', unit: 'MB/s', note: 'the same scp straight to the sshd port, no proxy', run: () => scpRun('upload', 'direct') },
  { group: 'proxy', name: 'scp download, direct', unit: 'MB/s', note: 'the same, remote → local', run: () => scpRun('download', 'direct') },
];

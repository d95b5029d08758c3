import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeerReport, PeerTask } from './peer.js';

const PEER_PATH = fileURLToPath(new URL('./peer.js', import.meta.url));

export interface PeerProcess {
  /** The peer's report: MB/s for a receiving task, done for a sending one. */
  report: Promise<PeerReport>;
  stop(): Promise<void>;
}

/**
 * Run one task in a fresh Node process (scripts/bench/peer.ts); its report arrives over IPC.
 * BENCH_PEER_NODE_ARGS (space-separated) goes to that process's node, e.g. `--cpu-prof --cpu-prof-dir=prof`.
 */
export function startPeer(task: PeerTask, timeoutMs = 60_000): PeerProcess {
  const execArgv = (process.env.BENCH_PEER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = fork(PEER_PATH, [JSON.stringify(task)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const report = new Promise<PeerReport>((resolve, reject) => {
    child.once('message', (msg) => resolve(msg as PeerReport));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench peer exited (code ${code}) before reporting`)));
    timer = setTimeout(() => reject(new Error(`bench peer gave no report within ${timeoutMs} ms`)), timeoutMs);
  }).finally(() => clearTimeout(timer));
  report.catch(() => {});
  return {
    report,
    async stop() {
      clearTimeout(timer);
      if (child.exitCode !== null || child.signalCode !== null) return;
      // Disconnecting lets the peer exit on its own (and write a --cpu-prof profile); kill it if it lingers.
      if (child.connected) child.disconnect();
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** MB/s from a receiving peer's report, or throw its error. */
export function mbpsOf(report: PeerReport): number {
  if ('error' in report) throw new Error(`bench peer failed: ${report.error}`);
  if ('mbps' in report) return report.mbps;
  throw new Error('bench peer reported no measurement');
}

export function checkDone(report: PeerReport): void {
  if ('error' in report) throw new Error(`bench peer failed: ${report.error}`);
}

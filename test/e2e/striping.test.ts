import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startForward, stopCli, waitForStderr, type CliRun } from '../helpers/cli.js';
import { listSandboxSessions } from '../helpers/resume-tools.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { exchangeServer, listenTcp, within, type TestServer } from '../helpers/servers.js';

/*
 * Striping (issue 17), the CLI as a child process: `--sessions N` spreads connections over N sessions. A drop of
 * one member is resumed under its connections; a member that ends is replaced, its connections reset, and the
 * connections on the other members never notice. (The speed-up itself is a benchmark: `npm run bench -- --filter
 * striping`.)
 */

const TARGET = 'i-0stripe0000000001';
const OLD_TARGET = 'i-0stripe0000000002';
const MiB = 1024 * 1024;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let exchangeSrv: TestServer;
let echoSrv: TestServer;
const runs: CliRun[] = [];
let dir: string;

beforeAll(async () => {
  exchangeSrv = await exchangeServer();
  echoSrv = await listenTcp((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  const ports = { '9000': `127.0.0.1:${exchangeSrv.port}`, '9002': `127.0.0.1:${echoSrv.port}` };
  env = await startTestSandbox({ [TARGET]: { ports }, [OLD_TARGET]: { agentVersion: '3.0.161.0', ports } });
  dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-stripe-'));
});

afterEach(async (context) => {
  // A failed case shows what the CLI said (the tail of its stderr).
  if (context.task.result?.state === 'fail') for (const r of runs) console.log(`[striping] CLI stderr (exit ${r.child.exitCode}):\n${r.stderr().trim().split('\n').slice(-40).join('\n')}`);
  env.sandbox.faults.reset();
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
});

afterAll(async () => {
  await env?.close();
  await exchangeSrv?.close();
  await echoSrv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Transfer {
  localPort: number;
  /** Resolves with the outcome: both digests equal, or how it ended. */
  outcome: Promise<{ upOk: boolean; downOk: boolean } | 'reset' | 'ended-short' | `error ${string}`>;
}

/** Start an exchange (`bytes` random bytes each way, SHA-256 checked by both ends) through the tunnel. */
async function startTransfer(port: number, bytes: number): Promise<Transfer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await within(new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject)), 5_000, 'connect');
  const localPort = socket.localPort!;
  const upHash = createHash('sha256');
  const downHash = createHash('sha256');
  let received = 0;
  let tail = Buffer.alloc(0);
  const outcome = new Promise<{ upOk: boolean; downOk: boolean } | 'reset' | 'ended-short' | `error ${string}`>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      const room = Math.max(0, bytes - received);
      if (room > 0) downHash.update(chunk.subarray(0, room));
      if (chunk.length > room) tail = Buffer.concat([tail, chunk.subarray(room)]);
      received += Math.min(room, chunk.length);
    });
    // A reset shows as ECONNRESET on a read, or as EPIPE on a write that was under way when it came.
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'reset' : `error ${err.code}`));
    socket.on('end', () => {
      if (received < bytes || tail.length < 128) return resolve('ended-short');
      const digests = tail.toString('utf8');
      resolve({ upOk: digests.slice(0, 64) === upHash.digest('hex'), downOk: digests.slice(64, 128) === downHash.digest('hex') });
    });
  });
  void (async () => {
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(bytes));
    socket.write(header);
    let left = bytes;
    while (left > 0 && !socket.destroyed) {
      const chunk = randomBytes(Math.min(64 * 1024, left));
      upHash.update(chunk);
      left -= chunk.length;
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r).once('close', r));
    }
  })();
  return { localPort, outcome };
}

/** Which session carries the connection from local port `localPort` (the debug line the carrier logs). */
function sessionOf(run: CliRun, localPort: number): string {
  const m = new RegExp(`connection #\\d+ from 127\\.0\\.0\\.1:${localPort} goes over session (\\S+)`).exec(run.stderr());
  if (!m) throw new Error(`no session named for local port ${localPort}; stderr:\n${run.stderr().slice(-2000)}`);
  return m[1]!;
}

async function striped(args: string[]): Promise<{ run: CliRun; port: number; sessionIds: string[] }> {
  const readyFile = join(dir, `ready-${Date.now()}-${Math.random().toString(16).slice(2)}.json`);
  const { run, port } = await startForward([...args, '--log-level', 'debug', '--ready-file', readyFile, '--endpoint-url', env.sandbox.endpoint]);
  runs.push(run);
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { tunnels: Array<{ sessionIds?: string[] }> };
      return { run, port, sessionIds: ready.tunnels[0]!.sessionIds ?? [] };
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe('forward --sessions N', () => {
  it('four sessions carry eight connections, two each, every byte intact both ways; the ready file lists the four', async () => {
    const { run, port, sessionIds } = await striped([TARGET, '--remote-port', '9000', '--sessions', '4']);
    expect(sessionIds).toHaveLength(4);
    expect(new Set(sessionIds).size).toBe(4);
    const live = (await listSandboxSessions(env.sandbox.endpoint)).filter((s) => s.target === TARGET && s.state !== 'terminated');
    expect(live.map((s) => s.sessionId).sort()).toEqual([...sessionIds].sort());
    const transfers = await Promise.all(Array.from({ length: 8 }, () => startTransfer(port, 2 * MiB)));
    const outcomes = await within(Promise.all(transfers.map((t) => t.outcome)), 60_000, 'eight transfers');
    for (const o of outcomes) expect(o).toEqual({ upOk: true, downOk: true });
    const perSession = new Map<string, number>();
    for (const t of transfers) perSession.set(sessionOf(run, t.localPort), (perSession.get(sessionOf(run, t.localPort)) ?? 0) + 1);
    expect([...perSession.values()].sort()).toEqual([2, 2, 2, 2]);
  });

  it('a drop of one member while eight transfer: resumed under its connections, all eight intact', async () => {
    const { run, port, sessionIds } = await striped([TARGET, '--remote-port', '9000', '--sessions', '4']);
    const transfers = await Promise.all(Array.from({ length: 8 }, () => startTransfer(port, 2 * MiB)));
    await new Promise((r) => setTimeout(r, 200));
    const victim = sessionIds[1]!;
    env.sandbox.gateway.drop(victim);
    const outcomes = await within(Promise.all(transfers.map((t) => t.outcome)), 90_000, 'eight transfers across the drop');
    for (const o of outcomes) expect(o).toEqual({ upOk: true, downOk: true });
    expect(run.stderr()).toMatch(new RegExp(`"?resumed|session resumed`));
    expect(transfers.filter((t) => sessionOf(run, t.localPort) === victim)).toHaveLength(2);
  });

  it('one member ends while eight transfer: its two connections are reset, the other six are untouched and intact, a new session takes its place', async () => {
    const { run, port, sessionIds } = await striped([TARGET, '--remote-port', '9000', '--sessions', '4']);
    const transfers = await Promise.all(Array.from({ length: 8 }, () => startTransfer(port, 8 * MiB)));
    await new Promise((r) => setTimeout(r, 200));
    const victim = sessionIds[2]!;
    const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${victim}/expire`, { method: 'POST' });
    expect(res.status).toBe(200);
    const outcomes = await within(Promise.all(transfers.map((t) => t.outcome)), 90_000, 'eight transfers, one member expired');
    transfers.forEach((t, i) => {
      // Reset (RST) by the forwarder. A client that is writing when the RST lands may see it as an early end
      // instead: Linux hands the reset to the write (which reports it later) and the next read returns EOF. Either
      // way the connection is cut short, never complete. (replacement.test.ts checks ECONNRESET on a reader.)
      if (sessionOf(run, t.localPort) === victim) expect(['reset', 'ended-short']).toContain(outcomes[i]);
      else expect(outcomes[i]).toEqual({ upOk: true, downOk: true });
    });
    await waitForStderr(run, new RegExp(`session \\S+ replaces ${victim}; the listener stayed up, 2 open connections were lost`), 15_000);
    const live = (await listSandboxSessions(env.sandbox.endpoint)).filter((s) => s.target === TARGET && s.state !== 'terminated');
    expect(live).toHaveLength(4);
    expect(live.map((s) => s.sessionId)).not.toContain(victim);
    // The next eight spread over the four again, the new member included.
    const again = await Promise.all(Array.from({ length: 8 }, () => startTransfer(port, 256 * 1024)));
    for (const o of await within(Promise.all(again.map((t) => t.outcome)), 60_000, 'eight more')) expect(o).toEqual({ upOk: true, downOk: true });
    expect(new Set(again.map((t) => sessionOf(run, t.localPort))).size).toBe(4);
  });

  it('basic mode (an agent without multiplexing) with --sessions 3: three connections at once', async () => {
    const { port } = await striped([OLD_TARGET, '--remote-port', '9002', '--sessions', '3']);
    // All three stay open while each gets its echo: one basic-mode session would serve the second only once
    // the first had closed.
    const sockets = [0, 1, 2].map(() => net.connect({ host: '127.0.0.1', port }));
    const echoes = sockets.map(
      (s, i) =>
        new Promise<string>((resolve, reject) => {
          let got = '';
          s.on('data', (d: Buffer) => {
            got += d.toString();
            if (got.length >= `connection ${i}`.length) resolve(got);
          });
          s.on('error', reject);
          s.write(`connection ${i}`);
        }),
    );
    expect(await within(Promise.all(echoes), 20_000, 'three basic-mode connections at once')).toEqual(['connection 0', 'connection 1', 'connection 2']);
    for (const s of sockets) expect(s.destroyed).toBe(false);
    for (const s of sockets) s.destroy();
  });

  it('up: a tunnel with sessions: 2 is carried by two sessions (ready file and stats), the other by one', async () => {
    const { runCli } = await import('../helpers/cli.js');
    const file = join(dir, 'up.yaml');
    writeFileSync(file, ['tunnels:', `  - {name: wide, target: ${TARGET}, remotePort: 9000, sessions: 2}`, `  - {name: narrow, target: ${TARGET}, remotePort: 9000}`, ''].join('\n'));
    const readyFile = join(dir, 'up-ready.json');
    const run = runCli(['up', '-f', file, '--ready-file', readyFile, '--stats-interval', '500ms', '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    const deadline = Date.now() + 15_000;
    while (!existsSync(readyFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { tunnels: Array<{ name: string; localPort: number; sessionIds?: string[] }> };
    const wide = ready.tunnels.find((t) => t.name === 'wide')!;
    expect(wide.sessionIds).toHaveLength(2);
    expect(ready.tunnels.find((t) => t.name === 'narrow')!.sessionIds).toBeUndefined();
    const transfers = await Promise.all([startTransfer(wide.localPort, 128 * 1024), startTransfer(wide.localPort, 128 * 1024)]);
    for (const o of await within(Promise.all(transfers.map((t) => t.outcome)), 30_000, 'two transfers')) expect(o).toEqual({ upOk: true, downOk: true });
    await waitForStderr(run, /stats wide: .*over 2 sessions/, 5_000);
  });

  it('--sessions out of range is a usage error (exit 2) before any session', async () => {
    const before = (await listSandboxSessions(env.sandbox.endpoint)).length;
    for (const bad of ['0', '17', 'many']) {
      const { runCli } = await import('../helpers/cli.js');
      const run = runCli(['forward', TARGET, '--remote-port', '9000', '--sessions', bad, '--endpoint-url', env.sandbox.endpoint]);
      expect(await within(run.exited, 10_000, 'exit')).toBe(2);
      expect(run.stderr()).toMatch(/--sessions must be a whole number from 1 to 16/);
    }
    expect((await listSandboxSessions(env.sandbox.endpoint)).length).toBe(before);
  });
});

import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { listenTcp, within, type TestServer } from '../helpers/servers.js';
import { newSessionSince, sandboxSession, sessionIds } from '../helpers/resume-tools.js';

/*
 * The client against the sandbox's model of the real agent (no send window, one resend per 100 ms, acks after a
 * blocking write, 2 s end wait), as a user meets it: the CLI as a child process, real sockets (issue 14).
 */

const TARGET = 'i-0flow00000000000001';
const MiB = 1024 * 1024;
/** The documented peak RSS budget of a forward (README "Memory"). */
const RSS_BUDGET_BYTES = 200 * MiB;

let paced: Awaited<ReturnType<typeof startTestSandbox>>;
let unpaced: Awaited<ReturnType<typeof startTestSandbox>>;
let source: TestServer;
let sink: TestServer;
/** Bytes each connection to `source` sends, chosen by the first line the client writes: "<bytes>\n". */
const runs: CliRun[] = [];

beforeAll(async () => {
  // source: reads a decimal byte count and a newline, then sends that many random bytes and their SHA-256 last (64 hex chars).
  source = await listenTcp((socket) => {
    socket.on('error', () => {});
    let line = '';
    const onData = (d: Buffer): void => {
      line += d.toString('latin1');
      if (!line.includes('\n')) return;
      socket.off('data', onData);
      void send(socket, Number.parseInt(line, 10));
    };
    socket.on('data', onData);
  });
  // sink: reads "<bytes>\n", hashes that many bytes, then answers with their SHA-256 (smux v1 has no half-close,
  // so the end of an upload is announced up front, not by an end of stream).
  sink = await listenTcp((socket) => {
    socket.on('error', () => {});
    const hash = createHash('sha256');
    let expected = -1;
    let got = 0;
    let head = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      if (expected < 0) {
        head = Buffer.concat([head, d]);
        const nl = head.indexOf(10);
        if (nl < 0) return;
        expected = Number.parseInt(head.subarray(0, nl).toString(), 10);
        d = head.subarray(nl + 1);
      }
      hash.update(d);
      got += d.length;
      if (got >= expected) socket.write(hash.digest('hex'));
    });
  });
  const ports = { '9': `127.0.0.1:${source.port}`, '10': `127.0.0.1:${sink.port}` };
  paced = await startTestSandbox({ [TARGET]: { ports } }, { paced: true });
  unpaced = await startTestSandbox({ [TARGET]: { ports } });
});

async function send(socket: net.Socket, bytes: number): Promise<void> {
  const hash = createHash('sha256');
  let left = bytes;
  while (left > 0 && !socket.destroyed) {
    const chunk = randomBytes(Math.min(64 * 1024, left));
    hash.update(chunk);
    left -= chunk.length;
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  socket.end(hash.digest('hex'));
}

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
  paced.sandbox.faults.reset();
  unpaced.sandbox.faults.reset();
});

afterAll(async () => {
  await paced?.close();
  await unpaced?.close();
  await source?.close();
  await sink?.close();
});

async function forward(env: typeof paced, port: string): Promise<number> {
  const { run, port: local } = await startForward([TARGET, '--remote-port', port, '--endpoint-url', env.sandbox.endpoint]);
  runs.push(run);
  return local;
}

/** Download `bytes` through the forward; the reader stops for `pauseMs` after `pauseAfter` bytes. Resolves with elapsed ms. */
function download(localPort: number, bytes: number, pause?: { after: number; ms: number }): Promise<{ ok: boolean; elapsedMs: number; pausedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port: localPort });
    const hash = createHash('sha256');
    let got = 0;
    let tail = '';
    let pausedMs = 0;
    let paused = false;
    socket.on('connect', () => socket.write(`${bytes}\n`));
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      const room = bytes - got;
      if (room > 0) hash.update(d.subarray(0, room));
      if (d.length > room) tail += d.subarray(Math.max(0, room)).toString('latin1');
      got += Math.min(room, d.length);
      if (pause && !paused && got >= pause.after) {
        paused = true;
        socket.pause();
        const at = Date.now();
        setTimeout(() => {
          pausedMs = Date.now() - at;
          socket.resume();
        }, pause.ms);
      }
    });
    socket.on('end', () => resolve({ ok: got === bytes && tail === hash.digest('hex'), elapsedMs: Date.now() - started, pausedMs }));
  });
}

function peakRss(run: CliRun): number {
  const status = readFileSync(`/proc/${run.child.pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('a local reader that pauses (receive side: budget, then TCP backpressure; nothing dropped)', () => {
  it('paced agent: a 30 s pause after 2 MiB of 20 MiB costs at most the pause + 10 s; RSS within budget', async () => {
    // Two forwards at once, one paused and one not: the same agent pacing, in the same run.
    const [withPause, without] = await Promise.all([forward(paced, '9'), forward(paced, '9')]);
    const [p, base] = await Promise.all([download(withPause, 20 * MiB, { after: 2 * MiB, ms: 30_000 }), download(without, 20 * MiB)]);
    expect(p.ok).toBe(true);
    expect(base.ok).toBe(true);
    console.log(`[flow] paced 20 MiB: ${base.elapsedMs} ms without a pause, ${p.elapsedMs} ms with a ${p.pausedMs} ms pause`);
    expect(p.elapsedMs).toBeLessThanOrEqual(base.elapsedMs + 30_000 + 10_000);
    expect(peakRss(runs[0]!)).toBeLessThan(RSS_BUDGET_BYTES);
  }, 120_000);

  it('unpaced agent: a 4 s pause during 32 MiB costs at most 4 s + 10 s', async () => {
    const local = await forward(unpaced, '9');
    const base = await download(local, 32 * MiB);
    const p = await download(local, 32 * MiB, { after: 8 * MiB, ms: 4_000 });
    expect([base.ok, p.ok]).toEqual([true, true]);
    console.log(`[flow] unpaced 32 MiB: ${base.elapsedMs} ms without a pause, ${p.elapsedMs} ms with a ${p.pausedMs} ms pause`);
    expect(p.elapsedMs).toBeLessThanOrEqual(base.elapsedMs + 4_000 + 10_000);
    expect(peakRss(runs[0]!)).toBeLessThan(RSS_BUDGET_BYTES);
  }, 90_000);

  it('two connections: while one reader pauses, the other keeps moving (within the budget)', async () => {
    const local = await forward(unpaced, '9');
    // 8 MiB: what the paused reader leaves unread fits the client's receive budget (smux 4 MiB + channel 8 MiB).
    const stalled = download(local, 8 * MiB, { after: 1 * MiB, ms: 8_000 });
    await new Promise((r) => setTimeout(r, 1_500));
    // 4 MiB on the other connection while the first one's reader is away (its unread bytes stay under the budget).
    const other = await within(download(local, 4 * MiB), 8_000, 'the other connection during the pause');
    expect(other.ok).toBe(true);
    expect((await stalled).ok).toBe(true);
  }, 60_000);
});

describe('a slow destination behind the agent (send side: no resend storm)', () => {
  it('the agent reader blocked 5 s during an upload: at most 20 resends per second, the upload intact', async () => {
    const before = await sessionIds(unpaced.sandbox.endpoint);
    const local = await forward(unpaced, '10');
    const session = (await within(waitForSession(unpaced.sandbox.endpoint, before), 5_000, 'the session')).sessionId;
    const socket = net.connect({ host: '127.0.0.1', port: local });
    socket.on('error', () => {});
    const reply = digestReply(socket);
    const hash = createHash('sha256');
    const total = 24 * MiB;
    socket.write(`${total}\n`);
    let written = 0;
    let blocked = false;
    while (written < total) {
      const chunk = randomBytes(64 * 1024);
      hash.update(chunk);
      written += chunk.length;
      if (!blocked && written >= 4 * MiB) {
        blocked = true;
        const res = await fetch(`${unpaced.sandbox.endpoint}/_sandbox/sessions/${session}/block-destination`, { method: 'POST', body: JSON.stringify({ ms: 5_000 }) });
        expect(res.status).toBe(202);
      }
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    }
    expect(await within(reply, 40_000, 'the sink digest')).toBe(hash.digest('hex'));
    socket.destroy();
    const c = (await sandboxSession(unpaced.sandbox.endpoint, session)).counters as unknown as Record<string, number>;
    // Every client resend reached the agent as a duplicate (the fault injector adds none here).
    console.log(`[flow] upload through a 5 s stall: ${c.duplicatesReceived} resends reached the agent, reader blocked ${c.readerBlockedMs} ms`);
    expect(c.readerBlockedMs).toBeGreaterThanOrEqual(4_000);
    expect(c.duplicatesReceived).toBeLessThanOrEqual(20 * 5 + 20);
  }, 60_000);
});

describe('pause_publication', () => {
  it('then a reconnect: the client does not stay paused, uploads continue', async () => {
    const before = await sessionIds(unpaced.sandbox.endpoint);
    const local = await forward(unpaced, '10');
    const socket = net.connect({ host: '127.0.0.1', port: local });
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    const text = 'before the pause;after the reconnect';
    const reply = digestReply(socket);
    socket.write(`${text.length}\nbefore the pause;`);
    const session = (await within(waitForSession(unpaced.sandbox.endpoint, before), 5_000, 'the session')).sessionId;
    expect((await fetch(`${unpaced.sandbox.endpoint}/_sandbox/sessions/${session}/pause-client`, { method: 'POST' })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${unpaced.sandbox.endpoint}/_sandbox/sessions/${session}/drop`, { method: 'POST' })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    socket.write('after the reconnect');
    const expected = createHash('sha256').update(text).digest('hex');
    expect(await within(reply, 10_000, 'the upload after pause + reconnect')).toBe(expected);
  }, 30_000);
});

describe('one signal ends it, whatever the service holds', () => {
  it('SIGTERM while the service withholds its acks and data is queued: TerminateSession, exit within 5 s', async () => {
    const before = await sessionIds(unpaced.sandbox.endpoint);
    const { run, port: local } = await startForward([TARGET, '--remote-port', '10', '--endpoint-url', unpaced.sandbox.endpoint]);
    const session = (await within(waitForSession(unpaced.sandbox.endpoint, before), 5_000, 'the session')).sessionId;
    expect((await fetch(`${unpaced.sandbox.endpoint}/_sandbox/sessions/${session}/withhold-acks`, { method: 'POST', body: JSON.stringify({ ms: 120_000 }) })).status).toBe(202);
    const socket = net.connect({ host: '127.0.0.1', port: local });
    socket.on('error', () => {});
    socket.write(`${64 * MiB}\n`);
    for (let i = 0; i < 64; i++) socket.write(randomBytes(64 * 1024));
    await new Promise((r) => setTimeout(r, 1_000));
    const signalledAt = Date.now();
    run.child.kill('SIGTERM');
    const exit = await within(run.exited, 10_000, 'forward to exit after SIGTERM').catch((err: Error) => {
      console.log(run.stderr());
      throw err;
    });
    expect(exit).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect((await sandboxSession(unpaced.sandbox.endpoint, session)).state).toBe('terminated');
    socket.destroy();
  }, 30_000);
});

/** The 64 hex characters the sink answers with. */
function digestReply(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    socket.on('data', (d: Buffer) => {
      s += d.toString();
      if (s.length >= 64) resolve(s.slice(0, 64));
    });
    socket.on('close', () => resolve(s));
  });
}

async function waitForSession(endpoint: string, before: Set<string>): Promise<{ sessionId: string }> {
  for (;;) {
    try {
      return await newSessionSince(endpoint, before);
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

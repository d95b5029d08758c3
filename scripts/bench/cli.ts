import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { untilStderr, withEchoServer, withForward, withProxy } from './cli-harness.js';
import { writeBytes } from './io.js';
import { within } from './servers.js';
import { median, MiB, percentile, toMBps, type BenchRow } from './types.js';

/*
 * End to end through the product: `ssm-bridge sandbox` and `ssm-bridge forward` / `proxy` as child processes
 * (unpaced agent), real TCP on 127.0.0.1 (scripts/bench/cli-harness.ts). Three processes share the machine's
 * cores, as they would on a developer's laptop running the sandbox.
 */

/** Bounds a transfer of `bytes` (each way) at 1 MB/s, 10× below the slowest run seen, plus 30 s to start. */
function transferTimeoutMs(bytes: number): number {
  return Math.round(30_000 + (bytes / 1e6) * 1000);
}

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolvePromise, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolvePromise(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

/** Resolves on the socket's first data (the discard server's answer); rejects if it closes first. */
function firstData(s: net.Socket): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    s.once('data', () => resolvePromise());
    s.once('error', reject);
    s.once('close', () => reject(new Error('the connection closed before the answer')));
  });
}

/** The 8-byte count the discard, source and turnaround servers read first. */
export function countHeader(bytes: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  return header;
}

/** A transfer over parallel connections: how long it took in all, and how long each connection took. */
interface Transfer {
  wallMs: number;
  connections: Array<{ bytes: number; ms: number }>;
}

/** Runs `connections` copies of `one` at once (each resolves with the bytes it moved), each timed on its own. */
async function parallel(connections: number, bytesEach: number, what: string, one: () => Promise<number>): Promise<Transfer> {
  const started = performance.now();
  const timed = Promise.all(
    Array.from({ length: connections }, async () => {
      const t = performance.now();
      const bytes = await one();
      return { bytes, ms: performance.now() - t };
    }),
  );
  const result = await within(timed, transferTimeoutMs(bytesEach * connections), `${what}: ${connections} × ${bytesEach} bytes`);
  return { wallMs: performance.now() - started, connections: result };
}

/** Upload `bytes` on each of `connections` sockets to the discard server, each until its answer. */
function upload(port: number, connections: number, bytes: number): Promise<Transfer> {
  return parallel(connections, bytes, 'upload', async () => {
    const s = await connect(port);
    try {
      const answered = firstData(s);
      s.write(countHeader(bytes));
      await writeBytes(s, bytes);
      await answered;
      return bytes;
    } finally {
      s.destroy();
    }
  });
}

/** Download `bytes` on each of `connections` sockets from the source server, each until it ends. */
function download(port: number, connections: number, bytes: number): Promise<Transfer> {
  return parallel(connections, bytes, 'download', async () => {
    const s = await connect(port);
    try {
      s.write(countHeader(bytes));
      let got = 0;
      s.on('data', (d: Buffer) => (got += d.length));
      await new Promise<void>((resolvePromise, reject) => {
        s.once('end', resolvePromise);
        s.once('error', reject);
        s.once('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
      });
      if (got !== bytes) throw new Error(`downloaded ${got} of ${bytes} bytes`);
      return got;
    } finally {
      s.destroy();
    }
  });
}

function totalMBps(t: Transfer): number {
  return toMBps(
    t.connections.reduce((sum, c) => sum + c.bytes, 0),
    t.wallMs,
  );
}

/** The slowest connection's throughput over the mean throughput: 1 when every connection got the same share. */
function fairness(t: Transfer): number {
  const rates = t.connections.map((c) => c.bytes / c.ms);
  return Math.min(...rates) / (rates.reduce((sum, r) => sum + r, 0) / rates.length);
}

const PING_BYTES = 64;

/**
 * `rounds` 64-byte ping-pongs: write to `to`, wait until the echo came out of `from`, repeat. The round-trip
 * times in ms. Fails when `from` ends first; the caller bounds the time.
 */
async function pingPong(to: Writable, from: Readable, rounds: number): Promise<number[]> {
  const payload = Buffer.alloc(PING_BYTES, 1);
  const times: number[] = [];
  let received = 0;
  let ended = false;
  let wake: () => void = () => {};
  const onData = (d: Buffer): void => {
    received += d.length;
    wake();
  };
  const onEnd = (): void => {
    ended = true;
    wake();
  };
  from.on('data', onData);
  from.once('end', onEnd);
  from.once('close', onEnd);
  try {
    for (let i = 1; i <= rounds; i++) {
      const t = performance.now();
      to.write(payload);
      // One ping in flight at a time, so the cumulative count says when this one is back.
      while (received < i * PING_BYTES) {
        if (ended) throw new Error(`the echo ended after ${received} bytes, in round ${i} of ${rounds}`);
        await new Promise<void>((r) => (wake = r));
      }
      times.push(performance.now() - t);
    }
    return times;
  } finally {
    from.off('data', onData);
    from.off('end', onEnd);
    from.off('close', onEnd);
  }
}

/** Ping-pong on a fresh connection to `port`, bounded in time. */
async function socketPingPong(port: number, rounds: number): Promise<number[]> {
  const s = await connect(port);
  try {
    return await within(pingPong(s, s, rounds), 60_000, `${rounds} round trips to 127.0.0.1:${port}`);
  } finally {
    s.destroy();
  }
}

/** Ping-pong through a proxy's stdin/stdout; one untimed round first, which waits for the session's start. */
async function proxyPingPong(proxy: ChildProcess, rounds: number): Promise<number[]> {
  await within(pingPong(proxy.stdin!, proxy.stdout!, 1), 30_000, 'the first round trip through the proxy');
  return within(pingPong(proxy.stdin!, proxy.stdout!, rounds), 60_000, `${rounds} round trips through the proxy`);
}

/** Through `proxy`: stdin → remote (the discard server's count protocol), measured to the server's answer. */
async function proxyUpload(proxy: ChildProcess, bytes: number): Promise<number> {
  const answered = new Promise((r) => proxy.stdout!.once('data', r));
  const started = performance.now();
  await within(
    (async () => {
      proxy.stdin!.write(countHeader(bytes));
      await writeBytes(proxy.stdin!, bytes);
      await answered;
    })(),
    transferTimeoutMs(bytes),
    `${bytes} bytes into the proxy`,
  );
  return toMBps(bytes, performance.now() - started);
}

/** Through `proxy`: remote → stdout. */
async function proxyDownload(proxy: ChildProcess, bytes: number): Promise<number> {
  const started = performance.now();
  proxy.stdin!.write(countHeader(bytes));
  let got = 0;
  const received = new Promise<void>((resolvePromise, reject) => {
    proxy.stdout!.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) resolvePromise();
    });
    // A proxy that ends early fails the row instead of hanging the run.
    proxy.stdout!.once('end', () => reject(new Error(`proxy stdout ended after ${got} of ${bytes} bytes (exit ${proxy.exitCode})`)));
  });
  await within(received, transferTimeoutMs(bytes), `${bytes} bytes out of the proxy`);
  return toMBps(bytes, performance.now() - started);
}

/**
 * Like `within`, and also fails once `moved()` (bytes so far) has stayed the same for `stallMs`: a long transfer
 * that stopped fails in seconds, not at its overall limit.
 */
function withinProgress<T>(promise: Promise<T>, moved: () => number, totalMs: number, what: string, stallMs = 30_000): Promise<T> {
  let last = moved();
  let lastChangeMs = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (moved() !== last) {
        last = moved();
        lastChangeMs = performance.now();
      } else if (performance.now() - lastChangeMs > stallMs) reject(new Error(`${what}: no progress for ${stallMs / 1000} s, at ${last} bytes`));
    }, 1_000);
  });
  return within(Promise.race([promise, stalled]), totalMs, what).finally(() => clearInterval(timer));
}

/**
 * `bytes` up then the same back down through one connection (the turnaround server), with backpressure.
 * Not both ways at once: that can stall the session for good (docs/BENCHMARKS.md, peak RSS rows).
 */
async function uploadThenDownload(port: number, bytes: number): Promise<void> {
  const s = await connect(port);
  try {
    let got = 0;
    const downloaded = new Promise<void>((resolvePromise, reject) => {
      s.on('data', (d: Buffer) => (got += d.length));
      s.once('end', () => (got === bytes ? resolvePromise() : reject(new Error(`downloaded ${got} of ${bytes} bytes`))));
      s.once('error', reject);
      s.once('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes downloaded`)));
    });
    const both = (async () => {
      s.write(countHeader(bytes));
      await writeBytes(s, bytes);
      await downloaded;
    })();
    await withinProgress(both, () => s.bytesWritten + got, transferTimeoutMs(2 * bytes), `${bytes} bytes up then down`);
  } finally {
    s.destroy();
  }
}

/** A process's peak resident set (VmHWM in /proc/<pid>/status), in MB (10^6 bytes). */
function peakRssMB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return (Number(m[1]) * 1024) / 1e6;
}

/** The forward's peak RSS after `bytes` went through one connection each way; read before it is stopped. */
function forwardPeakRss(bytes: number): Promise<number> {
  return withForward('turnaround', async (forward) => {
    await uploadThenDownload(forward.port, bytes);
    return peakRssMB(forward.cli.process.pid!);
  });
}

interface SessionView {
  sessionId: string;
  state: string;
}

/** The one session of a fresh sandbox that is not terminated. */
export async function liveSessionId(endpoint: string): Promise<string> {
  const res = await within(fetch(`${endpoint}/_sandbox/sessions`), 5_000, 'GET /_sandbox/sessions');
  const live = ((await res.json()) as SessionView[]).filter((s) => s.state !== 'terminated');
  if (live.length !== 1) throw new Error(`expected one live session, found ${live.length}`);
  return live[0]!.sessionId;
}

/** POST /_sandbox/sessions/<id>/drop: the sandbox cuts the session's WebSocket before it answers 202. */
async function dropWebSocket(endpoint: string, sessionId: string): Promise<void> {
  const path = `/_sandbox/sessions/${encodeURIComponent(sessionId)}/drop`;
  const res = await within(fetch(`${endpoint}${path}`, { method: 'POST' }), 5_000, `POST ${path}`);
  if (res.status !== 202) throw new Error(`POST ${path}: HTTP ${res.status} ${await res.text()}`);
}

/** How many `--log-format json` records with this `event` are in a child's stderr. */
function countEvents(stderr: string, event: string): number {
  let n = 0;
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      if ((JSON.parse(line) as { event?: unknown }).event === event) n++;
    } catch {
      // a partial last line
    }
  }
  return n;
}

/** Times a byte from each drop's 202 to its echo, `cuts` times; the median. */
function cutToFirstResumedByte(cuts: number): Promise<number> {
  return withForward(
    'echo',
    async (forward) => {
      const sessionId = await liveSessionId(forward.endpoint);
      const s = await connect(forward.port);
      try {
        let echoed = 0;
        s.on('data', (d: Buffer) => (echoed += d.length));
        const untilEchoed = (n: number, what: string): Promise<void> => {
          let finish = (): void => {};
          const reached = new Promise<void>((resolvePromise, reject) => {
            const check = (): void => {
              if (echoed >= n) resolvePromise();
            };
            const onClose = (): void => reject(new Error(`closed with ${echoed} of ${n} bytes echoed`));
            finish = () => s.off('data', check).off('close', onClose);
            s.on('data', check).once('close', onClose);
            check();
          });
          return within(reached, 10_000, what).finally(finish);
        };
        s.write('x');
        await untilEchoed(1, 'the echo before the first cut');
        const times: number[] = [];
        for (let i = 1; i <= cuts; i++) {
          await dropWebSocket(forward.endpoint, sessionId);
          const cutAt = performance.now();
          // Written at once: it leaves on the dying WebSocket or waits for the new one; either way it must come back.
          s.write('y');
          await untilEchoed(1 + i, `the echo after cut ${i}`);
          times.push(performance.now() - cutAt);
          // The next cut only once this resume is complete (the byte may come back before the event is logged).
          await untilStderr(forward.cli, (stderr) => (countEvents(stderr, 'resumed') >= i ? true : undefined), `"resumed" event ${i}`, 10_000);
          // And once the resumed connection counts as stable: a cut within 3 s of a resume continues the outage
          // with its backoff (the storm guard), so back-to-back cuts would time the backoff (median ~3 s).
          await new Promise((r) => setTimeout(r, 3_200));
        }
        return median(times);
      } finally {
        s.destroy();
      }
    },
    ['--log-format', 'json', '--log-level', 'info'],
  );
}

const BULK = 64 * MiB;
const LOOPBACK = 'ceiling/tcp loopback, node pipe';

export const rows: BenchRow[] = [
  { group: 'forward', name: 'upload 1 conn', unit: 'MB/s', ceiling: LOOPBACK, note: '64 MiB local → remote', run: () => withForward('discard', async (f) => totalMBps(await upload(f.port, 1, BULK))) },
  { group: 'forward', name: 'download 1 conn', unit: 'MB/s', ceiling: LOOPBACK, note: '64 MiB remote → local', run: () => withForward('source', async (f) => totalMBps(await download(f.port, 1, BULK))) },
  { group: 'forward', name: 'upload 16 conns', unit: 'MB/s', ceiling: LOOPBACK, note: '16 × 4 MiB, total', run: () => withForward('discard', async (f) => totalMBps(await upload(f.port, 16, BULK / 16))) },
  { group: 'forward', name: 'download 16 conns', unit: 'MB/s', ceiling: LOOPBACK, note: '16 × 4 MiB, total', run: () => withForward('source', async (f) => totalMBps(await download(f.port, 16, BULK / 16))) },
  {
    group: 'forward',
    name: '16 conns fairness',
    unit: 'ratio',
    note: 'min / mean per-connection MB/s over 16 × 4 MiB, the worse of downloads and uploads; target ≥ 0.5',
    run: async () => {
      const down = await withForward('source', (f) => download(f.port, 16, BULK / 16));
      const up = await withForward('discard', (f) => upload(f.port, 16, BULK / 16));
      return Math.min(fairness(down), fairness(up));
    },
  },
  {
    group: 'forward',
    name: 'connections/s',
    unit: 'conn/s',
    note: '200 sequential connect + 64 B echo + close',
    run: () =>
      withForward('echo', async (f) => {
        const started = performance.now();
        for (let i = 0; i < 200; i++) await socketPingPong(f.port, 1);
        return 200 / ((performance.now() - started) / 1000);
      }),
  },
  { group: 'forward', name: 'latency p50 (64 B)', unit: 'ms', note: 'lower is better; 1000 round trips', run: () => withForward('echo', async (f) => percentile(await socketPingPong(f.port, 1000), 50)) },
  { group: 'forward', name: 'latency p99 (64 B)', unit: 'ms', note: 'lower is better', run: () => withForward('echo', async (f) => percentile(await socketPingPong(f.port, 1000), 99)) },
  { group: 'forward', name: 'raw tcp latency p50 (64 B)', unit: 'ms', note: 'loopback without the tunnel, same client', run: () => withEchoServer(async (port) => percentile(await socketPingPong(port, 1000), 50)) },
  {
    group: 'forward',
    name: 'peak RSS, 128 MiB',
    unit: 'MB',
    note: 'lower is better; forward process VmHWM after 128 MiB up then 128 MiB down through one connection',
    run: () => forwardPeakRss(128 * MiB),
  },
  {
    group: 'forward',
    name: 'peak RSS, 1 GiB',
    unit: 'MB',
    ceiling: 'forward/peak RSS, 128 MiB',
    note: 'lower is better; the same with 1 GiB each way; targets ≤ 120 MB and ≤ 110% of the 128 MiB row',
    run: () => forwardPeakRss(1024 * MiB),
  },
  { group: 'proxy', name: 'stdin → remote', unit: 'MB/s', ceiling: LOOPBACK, note: '64 MiB through stdin/stdout (what scp rides on)', run: () => withProxy('discard', (p) => proxyUpload(p, BULK)) },
  { group: 'proxy', name: 'remote → stdout', unit: 'MB/s', ceiling: LOOPBACK, note: '64 MiB', run: () => withProxy('source', (p) => proxyDownload(p, BULK)) },
  { group: 'proxy', name: 'latency p50 (64 B)', unit: 'ms', note: 'lower is better; 1000 round trips through stdin/stdout', run: () => withProxy('echo', async (p) => percentile(await proxyPingPong(p, 1000), 50)) },
  { group: 'proxy', name: 'latency p99 (64 B)', unit: 'ms', note: 'lower is better', run: () => withProxy('echo', async (p) => percentile(await proxyPingPong(p, 1000), 99)) },
  {
    group: 'resume',
    name: 'cut → first resumed byte',
    unit: 'ms',
    note: 'lower is better; median of 20 WebSocket drops (control API) in one forward, 3.2 s apart (a resumed connection is stable after 3 s), each: 1 byte written, time to its echo',
    run: () => cutToFirstResumedByte(20),
  },
  { group: 'forward', name: 'start to listening', unit: 'ms', note: 'lower is better; spawn → "Listening on" line', run: () => withForward('echo', async (f) => f.startMs) },
];

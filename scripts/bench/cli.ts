import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiB, toMBps, type BenchRow } from './types.js';

/*
 * End to end through the product: `ssm-bridge sandbox` and `ssm-bridge forward` / `proxy` as child processes
 * (unpaced agent), real TCP on 127.0.0.1. Three processes share the machine's cores, as they would on a
 * developer's laptop running the sandbox.
 */

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/ssm-bridge.mjs');
const TARGET = 'i-0bench000000000001';
const ENV = { ...process.env, AWS_ACCESS_KEY_ID: 'AKIDSANDBOX', AWS_SECRET_ACCESS_KEY: 'sandbox', AWS_REGION: 'us-east-1' };

interface Sink {
  port: number;
  close(): void;
}

/** Port 9: discard. Port 19: sends `bytes` (from the request's first 8 bytes) then closes. Port 7: echo. */
async function startServers(): Promise<{ discard: Sink; source: Sink; echo: Sink }> {
  const make = async (onConnection: (s: net.Socket) => void): Promise<Sink> => {
    const server = net.createServer(onConnection);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  };
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  // Reads an 8-byte count, then that many bytes, then answers one byte: the upload is measured to its last byte
  // without relying on a half-close (which smux v1 cannot carry; see docs/protocol-notes.md).
  const discard = await make((s) => {
    let expected = -1;
    let got = 0;
    let header = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (expected < 0) {
        header = Buffer.concat([header, d]);
        if (header.length < 8) return;
        expected = Number(header.readBigUInt64BE(0));
        got = header.length - 8;
      } else got += d.length;
      if (got >= expected) s.end('k');
    });
    s.on('error', () => {});
  });
  const source = await make((s) => {
    s.on('error', () => {});
    s.once('data', async (header: Buffer) => {
      let left = Number(header.readBigUInt64BE(0));
      while (left > 0) {
        const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= part.length;
        if (!s.write(part)) await new Promise((r) => s.once('drain', r));
      }
      s.end();
    });
  });
  const echo = await make((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    s.pipe(s);
  });
  return { discard, source, echo };
}

function waitFor(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  return new Promise((resolvePromise, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${text}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${text}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(t);
      r(undefined);
    });
  });
}

/** The three servers and a sandbox whose target reaches them on ports 9, 19 and 7, for the duration of `body`. */
async function withSandbox<T>(body: (endpoint: string) => Promise<T>): Promise<T> {
  const servers = await startServers();
  const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-bench-'));
  const config = join(dir, 'sandbox.json');
  writeFileSync(config, JSON.stringify({ targets: { [TARGET]: { ports: { '9': `127.0.0.1:${servers.discard.port}`, '19': `127.0.0.1:${servers.source.port}`, '7': `127.0.0.1:${servers.echo.port}` } } } }));
  const sandbox = spawn(process.execPath, [CLI, 'sandbox', '--config', config, '--log-level', 'warn'], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    return await body((await waitFor(sandbox, /listening on (http:\/\/\S+)/))[1]!);
  } finally {
    await stop(sandbox);
    servers.discard.close();
    servers.source.close();
    servers.echo.close();
  }
}

const REMOTE_PORTS = { discard: '9', source: '19', echo: '7' } as const;

/** Sandbox + servers + `ssm-bridge proxy` to `remotePort` with piped stdin/stdout, for the duration of `body`. */
function withProxy<T>(remotePort: 'discard' | 'source', body: (proxy: ChildProcess) => Promise<T>): Promise<T> {
  return withSandbox(async (endpoint) => {
    const proxy = spawn(process.execPath, [CLI, 'proxy', TARGET, '--port', REMOTE_PORTS[remotePort], '--endpoint-url', endpoint], { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      return await body(proxy);
    } finally {
      await stop(proxy);
    }
  });
}

/** Through `proxy`: stdin → remote (the discard server's count protocol), measured to the server's answer. */
async function proxyUpload(proxy: ChildProcess, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  const done = new Promise((r) => proxy.stdout!.once('data', r));
  const started = performance.now();
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  proxy.stdin!.write(header);
  let left = bytes;
  while (left > 0) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= part.length;
    if (!proxy.stdin!.write(part)) await new Promise((r) => proxy.stdin!.once('drain', r));
  }
  await done;
  return toMBps(bytes, performance.now() - started);
}

/** Through `proxy`: remote → stdout. */
async function proxyDownload(proxy: ChildProcess, bytes: number): Promise<number> {
  const started = performance.now();
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  proxy.stdin!.write(header);
  let got = 0;
  await new Promise<void>((resolvePromise, reject) => {
    proxy.stdout!.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) resolvePromise();
    });
    // Bounded: a proxy that ends early fails the row instead of hanging the run.
    proxy.stdout!.once('end', () => reject(new Error(`proxy stdout ended after ${got} of ${bytes} bytes (exit ${proxy.exitCode})`)));
  });
  return toMBps(bytes, performance.now() - started);
}

/** Sandbox + servers + one forward to `remotePort`, for the duration of `body`. */
function withForward<T>(remotePort: 'discard' | 'source' | 'echo', body: (localPort: number, startMs: number) => Promise<T>): Promise<T> {
  return withSandbox(async (endpoint) => {
    const started = performance.now();
    const forward = spawn(process.execPath, [CLI, 'forward', TARGET, '--remote-port', REMOTE_PORTS[remotePort], '--endpoint-url', endpoint, '--log-level', 'warn'], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const localPort = Number((await waitFor(forward, /Listening on 127\.0\.0\.1:(\d+)/))[1]);
      return await body(localPort, performance.now() - started);
    } finally {
      await stop(forward);
    }
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolvePromise, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolvePromise(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

/** Upload `bytes` on each of `connections` sockets; MB/s in total, measured until the far side closes. */
async function upload(port: number, connections: number, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const s = await connect(port);
      const done = new Promise((r) => s.once('data', r));
      const header = Buffer.alloc(8);
      header.writeBigUInt64BE(BigInt(bytes));
      s.write(header);
      let left = bytes;
      while (left > 0) {
        const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= part.length;
        if (!s.write(part)) await new Promise((r) => s.once('drain', r));
      }
      await done;
      s.destroy();
    }),
  );
  return toMBps(bytes * connections, performance.now() - started);
}

/** Download `bytes` on each of `connections` sockets from the source server. */
async function download(port: number, connections: number, bytes: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const s = await connect(port);
      const header = Buffer.alloc(8);
      header.writeBigUInt64BE(BigInt(bytes));
      s.write(header);
      let got = 0;
      s.on('data', (d: Buffer) => (got += d.length));
      await new Promise((r) => s.once('end', r));
      s.destroy();
      if (got !== bytes) throw new Error(`downloaded ${got} of ${bytes} bytes`);
    }),
  );
  return toMBps(bytes * connections, performance.now() - started);
}

/** 64-byte ping-pong: the given percentile of round-trip times, in ms. */
async function pingPong(port: number, rounds: number): Promise<number[]> {
  const s = await connect(port);
  const payload = Buffer.alloc(64, 1);
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    s.write(payload);
    let got = 0;
    await new Promise<void>((r) => {
      const onData = (d: Buffer): void => {
        got += d.length;
        if (got >= 64) {
          s.off('data', onData);
          r();
        }
      };
      s.on('data', onData);
    });
    times.push(performance.now() - t);
  }
  s.destroy();
  return times.sort((a, b) => a - b);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The same ping-pong straight to an echo server: what loopback TCP costs. */
async function rawPingPong(rounds: number): Promise<number[]> {
  const { echo, discard, source } = await startServers();
  try {
    return await pingPong(echo.port, rounds);
  } finally {
    echo.close();
    discard.close();
    source.close();
  }
}

const BULK = 64 * MiB;

export const rows: BenchRow[] = [
  { group: 'forward', name: 'upload 1 conn', unit: 'MB/s', ceiling: 'ceiling/tcp loopback, node pipe', note: '64 MiB local → remote', run: () => withForward('discard', (p) => upload(p, 1, BULK)) },
  { group: 'forward', name: 'download 1 conn', unit: 'MB/s', ceiling: 'ceiling/tcp loopback, node pipe', note: '64 MiB remote → local', run: () => withForward('source', (p) => download(p, 1, BULK)) },
  { group: 'forward', name: 'upload 16 conns', unit: 'MB/s', ceiling: 'ceiling/tcp loopback, node pipe', note: '16 × 4 MiB, total', run: () => withForward('discard', (p) => upload(p, 16, BULK / 16)) },
  { group: 'forward', name: 'download 16 conns', unit: 'MB/s', ceiling: 'ceiling/tcp loopback, node pipe', note: '16 × 4 MiB, total', run: () => withForward('source', (p) => download(p, 16, BULK / 16)) },
  {
    group: 'forward',
    name: 'connections/s',
    unit: 'conn/s',
    note: '200 sequential connect + 64 B echo + close',
    run: () =>
      withForward('echo', async (p) => {
        const started = performance.now();
        for (let i = 0; i < 200; i++) {
          const times = await pingPong(p, 1);
          void times;
        }
        return 200 / ((performance.now() - started) / 1000);
      }),
  },
  { group: 'forward', name: 'latency p50 (64 B)', unit: 'ms', note: 'lower is better; 1000 round trips', run: () => withForward('echo', async (p) => percentile(await pingPong(p, 1000), 50)) },
  { group: 'forward', name: 'latency p99 (64 B)', unit: 'ms', note: 'lower is better', run: () => withForward('echo', async (p) => percentile(await pingPong(p, 1000), 99)) },
  { group: 'forward', name: 'raw tcp latency p50 (64 B)', unit: 'ms', note: 'loopback without the tunnel, same client', run: async () => percentile(await rawPingPong(1000), 50) },
  { group: 'proxy', name: 'stdin → remote', unit: 'MB/s', ceiling: 'ceiling/tcp loopback, node pipe', note: '64 MiB through stdin/stdout (what scp rides on)', run: () => withProxy('discard', (p) => proxyUpload(p, BULK)) },
  { group: 'proxy', name: 'remote → stdout', unit: 'MB/s', ceiling: 'ceiling/tcp loopback, node pipe', note: '64 MiB', run: () => withProxy('source', (p) => proxyDownload(p, BULK)) },
  { group: 'forward', name: 'start to listening', unit: 'ms', note: 'lower is better; spawn → "Listening on" line', run: () => withForward('echo', async (_p, ms) => ms) },
];

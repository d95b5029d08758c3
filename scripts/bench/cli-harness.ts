import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { listenTcp, type TestServer } from '../lib/tcp-server.js';
import { writeBytes } from './io.js';

/*
 * The product as child processes for the end-to-end rows: `ssm-bridge sandbox` (unpaced agent) with servers
 * in this process behind it, and `ssm-bridge forward` / `proxy` against it, all on 127.0.0.1. The children's
 * logs are kept in memory (for readiness lines, events and error messages), never printed.
 */

export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/ssm-bridge.mjs');
export const TARGET = 'i-0bench000000000001';
export const ENV = { ...process.env, AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' };

/** The target's ports in the bench sandbox, each reaching one of the servers below. */
export const REMOTE_PORTS = { discard: '9', source: '19', turnaround: '10', echo: '7' } as const;
export type RemoteServer = keyof typeof REMOTE_PORTS;

/**
 * Reads an 8-byte count, then that many bytes, then calls `then` (once): an upload is measured to its last
 * byte without relying on a half-close (which smux v1 cannot carry; see docs/protocol-notes.md).
 */
function afterCountedUpload(s: net.Socket, then: (count: number) => void): void {
  let expected = -1;
  let got = 0;
  let header = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    if (expected < 0) {
      header = Buffer.concat([header, d]);
      if (header.length < 8) return;
      expected = Number(header.readBigUInt64BE(0));
      got = header.length - 8;
    } else got += d.length;
    if (got < expected) return;
    s.off('data', onData);
    then(expected);
  };
  s.on('data', onData);
}

/** `count` bytes with backpressure, then the end; a connection that fails is destroyed. */
function sendAndEnd(s: net.Socket, count: number): void {
  writeBytes(s, count).then(
    () => s.end(),
    () => s.destroy(),
  );
}

/**
 * discard: a counted upload, answered with one byte. source: sends the count its request's first 8 bytes give,
 * then ends. turnaround: a counted upload, then as many bytes back, then the end (both directions through one
 * connection, one after the other). echo: echo.
 */
async function startServers(): Promise<Record<RemoteServer, TestServer>> {
  const discard = await listenTcp((s) => afterCountedUpload(s, () => s.end('k')));
  const source = await listenTcp((s) => s.once('data', (header: Buffer) => sendAndEnd(s, Number(header.readBigUInt64BE(0)))));
  const turnaround = await listenTcp((s) => afterCountedUpload(s, (count) => sendAndEnd(s, count)));
  const echo = await listenTcp((s) => {
    s.setNoDelay(true);
    s.pipe(s);
  });
  return { discard, source, turnaround, echo };
}

/** The echo server alone, for the rows that measure loopback TCP without the tunnel. */
export async function withEchoServer<T>(body: (port: number) => Promise<T>): Promise<T> {
  const servers = await startServers();
  try {
    return await body(servers.echo.port);
  } finally {
    for (const s of Object.values(servers)) void s.close();
  }
}

/** A CLI child process and what it wrote on stderr so far. */
export interface CliChild {
  process: ChildProcess;
  stderr(): string;
}

export function spawnCli(args: string[], stdio: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore' }): CliChild {
  const child = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: [stdio.stdin, stdio.stdout, 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  // A child that exits first must not crash the bench with EPIPE on its stdin.
  child.stdin?.on('error', () => {});
  return { process: child, stderr: () => stderr };
}

/**
 * Resolves with what `find` returns once it returns something for the child's stderr (checked on every
 * chunk); rejects, with the stderr, when the child exits first or after `timeoutMs`.
 */
export function untilStderr<T>(cli: CliChild, find: (stderr: string) => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const stream = cli.process.stderr!;
    const finish = (): void => {
      clearTimeout(timer);
      stream.off('data', check);
      cli.process.off('exit', onExit);
    };
    // The accumulating listener was attached at spawn, before this one: stderr() already has the chunk.
    function check(): void {
      const found = find(cli.stderr());
      if (found === undefined) return;
      finish();
      resolvePromise(found);
    }
    function onExit(code: number | null): void {
      finish();
      reject(new Error(`exited ${code} before ${what}: ${cli.stderr().slice(-2000)}`));
    }
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`no ${what} within ${timeoutMs} ms: ${cli.stderr().slice(-2000)}`));
    }, timeoutMs);
    stream.on('data', check);
    cli.process.once('exit', onExit);
    if (cli.process.exitCode !== null) onExit(cli.process.exitCode);
    else check();
  });
}

export function untilStderrMatches(cli: CliChild, pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> {
  return untilStderr(cli, (text) => pattern.exec(text) ?? undefined, String(pattern), timeoutMs);
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The servers and a sandbox whose target reaches them on REMOTE_PORTS, plus `extraPorts` (remote port →
 * `host:port`), for the duration of `body`, which gets the sandbox's endpoint URL.
 */
export async function withSandbox<T>(body: (endpoint: string) => Promise<T>, extraPorts: Record<string, string> = {}, options: { paced?: boolean } = {}): Promise<T> {
  const servers = await startServers();
  const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-bench-'));
  try {
    const config = join(dir, 'sandbox.json');
    const ports = { ...extraPorts, ...Object.fromEntries(Object.entries(REMOTE_PORTS).map(([name, port]) => [port, `127.0.0.1:${servers[name as RemoteServer].port}`])) };
    writeFileSync(config, JSON.stringify({ targets: { [TARGET]: { ports } } }));
    const sandbox = spawnCli(['sandbox', ...(options.paced ? [] : ['--unpaced']), '--config', config, '--log-level', 'warn'], { stdin: 'ignore', stdout: 'ignore' });
    try {
      return await body((await untilStderrMatches(sandbox, /listening on (http:\/\/\S+)/))[1]!);
    } finally {
      await stop(sandbox.process);
    }
  } finally {
    for (const s of Object.values(servers)) void s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Sandbox + servers + `ssm-bridge proxy` to `remote` with piped stdin/stdout, for the duration of `body`. */
export function withProxy<T>(remote: RemoteServer, body: (proxy: ChildProcess) => Promise<T>): Promise<T> {
  return withSandbox(async (endpoint) => {
    const proxy = spawnCli(['proxy', TARGET, '--port', REMOTE_PORTS[remote], '--endpoint-url', endpoint], { stdin: 'pipe', stdout: 'pipe' });
    try {
      return await body(proxy.process);
    } finally {
      await stop(proxy.process);
    }
  });
}

export interface ForwardRun {
  /** The local port it listens on. */
  port: number;
  /** Spawn → its "Listening on" line, ms. */
  startMs: number;
  endpoint: string;
  cli: CliChild;
}

/**
 * Sandbox + servers + one `ssm-bridge forward` to `remote`, for the duration of `body`. `logArgs` replace the
 * default `--log-level warn` (e.g. JSON logs at info, to read its events).
 */
export function withForward<T>(remote: RemoteServer, body: (forward: ForwardRun) => Promise<T>, logArgs: string[] = ['--log-level', 'warn']): Promise<T> {
  return withSandbox(async (endpoint) => {
    const started = performance.now();
    const cli = spawnCli(['forward', TARGET, '--remote-port', REMOTE_PORTS[remote], '--endpoint-url', endpoint, ...logArgs], { stdin: 'ignore', stdout: 'ignore' });
    try {
      const port = Number((await untilStderrMatches(cli, /Listening on 127\.0\.0\.1:(\d+)/))[1]);
      return await body({ port, startMs: performance.now() - started, endpoint, cli });
    } finally {
      await stop(cli.process);
    }
  });
}

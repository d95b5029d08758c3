import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startForward, stopCli, waitForStderr, type CliRun } from '../helpers/cli.js';
import { listSandboxSessions } from '../helpers/resume-tools.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { exchange, exchangeServer, listenTcp, within, type TestServer } from '../helpers/servers.js';

/*
 * Tunnels outlive sessions (issue 16), the CLI as a child process against the sandbox: a session that ends in a
 * way a new session fixes is replaced behind the same listener; connections open on it are reset and named in
 * the log; new connections carry every byte, both ways, through the new session.
 */

const TARGET = 'i-0replace000000001';
const OTHER = 'i-0replace000000002';
const MiB = 1024 * 1024;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let exchangeSrv: TestServer;
/** Accepts and holds the connection open, sending a little now and then: a long-lived client connection. */
let holdingSrv: TestServer;
const runs: CliRun[] = [];
let dir: string;

beforeAll(async () => {
  exchangeSrv = await exchangeServer();
  holdingSrv = await listenTcp((socket) => {
    socket.on('error', () => {});
    socket.write('hello\n');
    socket.resume();
  });
  const ports = { '9000': `127.0.0.1:${exchangeSrv.port}`, '9001': `127.0.0.1:${holdingSrv.port}` };
  env = await startTestSandbox({ [TARGET]: { ports }, [OTHER]: { ports } });
  dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-replace-'));
});

afterEach(async () => {
  env.sandbox.faults.reset();
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
});

afterAll(async () => {
  await env?.close();
  await exchangeSrv?.close();
  await holdingSrv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function control(path: string): Promise<void> {
  const res = await within(fetch(`${env.sandbox.endpoint}/_sandbox/${path}`, { method: 'POST' }), 5_000, `POST ${path}`);
  expect(res.status).toBeLessThan(300);
}

async function targetStarts(target: string): Promise<number> {
  const res = await within(fetch(`${env.sandbox.endpoint}/_sandbox/targets/${target}`), 5_000, 'GET target');
  return ((await res.json()) as { startSessionCalls: number }).startSessionCalls;
}

async function liveSessionOf(target: string): Promise<string> {
  const live = (await listSandboxSessions(env.sandbox.endpoint)).filter((s) => s.target === target && s.state !== 'terminated');
  expect(live).toHaveLength(1);
  return live[0]!.sessionId;
}

/** A connection to the holding destination through the tunnel, once its greeting arrived. */
async function holdConnection(port: number): Promise<{ socket: net.Socket; ended: Promise<'reset' | 'end' | 'close'> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const ended = new Promise<'reset' | 'end' | 'close'>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNRESET' ? 'reset' : 'close'));
    socket.once('end', () => resolve('end'));
    socket.once('close', () => resolve('close'));
  });
  await within(new Promise((resolve) => socket.once('data', resolve)), 10_000, 'the greeting through the tunnel');
  socket.resume(); // a paused socket would never read the reset
  return { socket, ended };
}

/** 1 MiB each way through the tunnel, SHA-256 checked on both ends. */
async function expectIntact(port: number, bytes = MiB): Promise<void> {
  expect(await within(exchange(port, bytes), 30_000, `${bytes} bytes each way`)).toEqual({ upOk: true, downOk: true, received: bytes });
}

describe('a forward outlives its session', () => {
  it.each([
    ['expires', (id: string) => control(`sessions/${id}/expire`)],
    ['is terminated through the API', (id: string) => control(`sessions/${id}/terminate`)],
    ['is ended by the agent', (id: string) => control(`sessions/${id}/agent-end`)],
  ])('the session %s: the open connection is reset and named, a new session carries 1 MiB each way, the process runs on', async (_how, end) => {
    const { run, port } = await startForward([TARGET, '--remote-port', '9000', '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    await expectIntact(port);
    const first = await liveSessionOf(TARGET);
    // An exchange connection held open mid-transfer (its header sent, 4 MiB announced, 1 KiB sent).
    const held = net.connect({ host: '127.0.0.1', port });
    const heldEnd = new Promise<string>((resolve) => {
      held.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      held.once('end', () => resolve('end'));
    });
    await new Promise((resolve) => held.once('connect', resolve));
    held.resume(); // a paused socket would never read the reset
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(4 * MiB));
    held.write(header);
    held.write(randomBytes(1024));
    await new Promise((r) => setTimeout(r, 300));

    await end(first);
    await waitForStderr(run, /session \S+ replaces \S+; the listener stayed up, 1 open connection was lost/, 15_000);
    expect(run.stderr()).toMatch(/connection #2 from 127\.0\.0\.1:\d+ was lost with session \S+; resetting it/);
    expect(await within(heldEnd, 5_000, 'the held connection to end')).toBe('ECONNRESET');
    expect(run.child.exitCode).toBeNull();
    await expectIntact(port);
    const second = await liveSessionOf(TARGET);
    expect(second).not.toBe(first);
    expect(run.child.exitCode).toBeNull();
    expect(await stopCli(run)).toBe(0);
  });

  it('StartSession throttled three times before the replacement starts: retried with backoff, then served', async () => {
    const { run, port } = await startForward([TARGET, '--remote-port', '9000', '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    const before = await targetStarts(TARGET);
    await env.sandbox.faults.update({ failStartCount: 3, failStartWith: 'ThrottlingException' });
    await control(`sessions/${await liveSessionOf(TARGET)}/expire`);
    await waitForStderr(run, /replaces/, 20_000);
    // The SDK retries a throttled call itself (3 attempts per call): what counts is that it came through.
    expect(await targetStarts(TARGET)).toBeGreaterThanOrEqual(before + 4);
    expect(run.child.exitCode).toBeNull();
    await expectIntact(port);
  });

  it('StartSession answering AccessDenied for the replacement: a final answer, exit 4 with one line', async () => {
    const { run } = await startForward([TARGET, '--remote-port', '9000', '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    await env.sandbox.faults.update({ failStartCount: 1_000, failStartWith: 'AccessDeniedException' });
    await control(`sessions/${await liveSessionOf(TARGET)}/expire`);
    expect(await within(run.exited, 20_000, 'forward to exit')).toBe(4);
    expect(run.stderr().trim().split('\n').at(-1)).toMatch(/^ssm-bridge: .*(access|denied|permission)/i);
  });

  it('--no-reconnect: the same expiry exits 6, as before', async () => {
    const { run, port } = await startForward([TARGET, '--remote-port', '9000', '--no-reconnect', '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    await expectIntact(port);
    await control(`sessions/${await liveSessionOf(TARGET)}/expire`);
    expect(await within(run.exited, 20_000, 'forward to exit')).toBe(6);
    expect(run.stderr()).not.toMatch(/replaces/);
  });

  it('the ready file names the session carrying the tunnel now; stats count the replacement', async () => {
    const readyFile = join(dir, 'ready.json');
    const { run, port } = await startForward([TARGET, '--remote-port', '9000', '--ready-file', readyFile, '--stats-interval', '1s', '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    const first = await liveSessionOf(TARGET);
    // The file follows the listening line: wait for it.
    const readyBy = Date.now() + 5_000;
    while (Date.now() < readyBy && !existsSync(readyFile)) await new Promise((r) => setTimeout(r, 20));
    expect((JSON.parse(readFileSync(readyFile, 'utf8')) as { tunnels: Array<{ sessionId: string }> }).tunnels[0]!.sessionId).toBe(first);
    await control(`sessions/${first}/expire`);
    await waitForStderr(run, /replaces/, 15_000);
    const second = await liveSessionOf(TARGET);
    const deadline = Date.now() + 5_000;
    let named = '';
    while (Date.now() < deadline) {
      named = (JSON.parse(readFileSync(readyFile, 'utf8')) as { tunnels: Array<{ sessionId: string }> }).tunnels[0]!.sessionId;
      if (named === second) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(named).toBe(second);
    await expectIntact(port, 64 * 1024);
    await waitForStderr(run, new RegExp(`sessions replaced 1 \\(now ${second}\\)`), 5_000);
  });

  it('exec mode: the command keeps running across a replacement and uses the new session; its status is the exit status', async () => {
    const go = join(dir, 'go');
    // Connect, read the greeting, wait for the test's go-ahead (given after the replacement), connect again.
    const script = `
      const net = require('node:net'), fs = require('node:fs');
      const greet = () => new Promise((ok, fail) => { const s = net.connect(+process.env.SSM_BRIDGE_LOCAL_PORT, '127.0.0.1'); s.once('data', (d) => { s.destroy(); ok(d.toString()); }); s.once('error', fail); });
      (async () => {
        console.error('first: ' + JSON.stringify(await greet()));
        for (let i = 0; i < 600 && !fs.existsSync(${JSON.stringify(go)}); i++) await new Promise((r) => setTimeout(r, 50));
        console.error('second: ' + JSON.stringify(await greet()));
        process.exit(7);
      })().catch((e) => { console.error('failed: ' + e.message); process.exit(1); });`;
    const run = runCli(['forward', TARGET, '--remote-port', '9001', '--endpoint-url', env.sandbox.endpoint, '--', process.execPath, '-e', script]);
    runs.push(run);
    await waitForStderr(run, /first: "hello\\n"/, 15_000);
    const first = await liveSessionOf(TARGET);
    await control(`sessions/${first}/expire`);
    await waitForStderr(run, /replaces/, 15_000);
    writeFileSync(go, '');
    expect(await within(run.exited, 20_000, 'the command to finish')).toBe(7);
    expect(run.stderr()).toMatch(/second: "hello\\n"/);
    // The run's end terminated the replacement session too.
    expect((await listSandboxSessions(env.sandbox.endpoint)).filter((s) => s.target === TARGET && s.state !== 'terminated')).toEqual([]);
  });

  it('up with two tunnels: one session is replaced, the other is untouched (its open connection goes on)', async () => {
    const file = join(dir, 'two.yaml');
    writeFileSync(
      file,
      [
        'tunnels:',
        `  - {name: a, target: ${TARGET}, remotePort: 9001, localPort: 0}`,
        `  - {name: b, target: ${OTHER}, remotePort: 9001, localPort: 0}`,
        '',
      ].join('\n'),
    );
    const run = runCli(['up', '-f', file, '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    const a = await waitForStderr(run, /Listening on 127\.0\.0\.1:(\d+) -> \S+ \(a\)/);
    const b = await waitForStderr(run, /Listening on 127\.0\.0\.1:(\d+) -> \S+ \(b\)/);
    const heldA = await holdConnection(Number(a[1]));
    const heldB = await holdConnection(Number(b[1]));
    const sessionB = await liveSessionOf(OTHER);
    await control(`sessions/${await liveSessionOf(TARGET)}/expire`);
    await waitForStderr(run, /replaces/, 15_000);
    expect(await within(heldA.ended, 5_000, 'the connection on the replaced session to end')).toBe('reset');
    // b: same session, and its connection still carries bytes both ways.
    expect(await liveSessionOf(OTHER)).toBe(sessionB);
    heldB.socket.write('still there?');
    await new Promise((r) => setTimeout(r, 300));
    expect(heldB.socket.destroyed).toBe(false);
    const again = await holdConnection(Number(a[1]));
    again.socket.destroy();
    heldB.socket.destroy();
    expect(run.child.exitCode).toBeNull();
  });
});

describe('an idle forward', () => {
  let idleEnv: Awaited<ReturnType<typeof startTestSandbox>>;
  let echo: TestServer;
  beforeAll(async () => {
    echo = await listenTcp((socket) => {
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    // The service's idle session timeout, shortened from 20 minutes (the agent keeps smux quiet for current clients).
    idleEnv = await startTestSandbox({ [TARGET]: { ports: { '7': `127.0.0.1:${echo.port}` } } }, { config: { idleSessionTimeoutMs: 1_500 } as never });
  });
  afterAll(async () => {
    await idleEnv?.close();
    await echo?.close();
  });

  it('left longer than the idle timeout still serves the next connection (through a new session)', async () => {
    const { run, port } = await startForward([TARGET, '--remote-port', '7', '--endpoint-url', idleEnv.sandbox.endpoint]);
    runs.push(run);
    await waitForStderr(run, /timed out due to inactivity[\s\S]*replaces|replaces/, 15_000);
    const sessions = await listSandboxSessions(idleEnv.sandbox.endpoint);
    expect(sessions.some((s) => s.terminatedReason === 'idle timeout')).toBe(true);
    const payload = randomBytes(256 * 1024);
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let got = 0;
    const echoed = new Promise<Buffer>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        got += d.length;
        if (got >= payload.length) resolve(Buffer.concat(chunks));
      });
      socket.on('error', reject);
    });
    socket.write(payload);
    expect((await within(echoed, 15_000, 'the echo through the new session')).equals(payload)).toBe(true);
    socket.destroy();
    expect(run.child.exitCode).toBeNull();
  });
});

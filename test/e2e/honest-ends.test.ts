import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, sandboxEnv, startForward, stopCli } from '../helpers/cli.js';
import { newSessionSince, sessionIds } from '../helpers/resume-tools.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { listenTcp, within, type TestServer } from '../helpers/servers.js';

/*
 * Honest ends (issue 14): against the real agent, which waits only 2 s for acknowledgements when a session ends,
 * `proxy` either delivers every byte and exits 0, or exits 11 with one line saying how much never arrived, having
 * delivered the bytes before the gap. Never 0 with bytes missing.
 */

const TARGET = 'i-0honest0000000001';
const MiB = 1024 * 1024;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let download: TestServer;
/** Sends 512 KiB on connect and keeps the connection open. */
let holding: TestServer;
/** What the destination sent on each connection, in order of connection. */
const sent: Buffer[] = [];
let downloadBytes = 2 * MiB;

beforeAll(async () => {
  // A destination that sends `downloadBytes` random bytes on connect, then closes (stream mode: the session ends).
  download = await listenTcp((socket) => {
    socket.on('error', () => {});
    const bytes = randomBytes(downloadBytes);
    sent.push(bytes);
    socket.end(bytes);
    socket.resume();
  });
  holding = await listenTcp((socket) => {
    socket.on('error', () => {});
    socket.write(randomBytes(512 * 1024));
    socket.resume();
  });
  env = await startTestSandbox({ [TARGET]: { ports: { '22': `127.0.0.1:${download.port}`, '9': `127.0.0.1:${holding.port}` } } });
});

afterEach(() => env.sandbox.faults.reset());

afterAll(async () => {
  await env?.close();
  await download?.close();
  await holding?.close();
});

interface ProxyOutcome {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
  sent: Buffer;
}

async function runProxy(): Promise<ProxyOutcome> {
  const index = sent.length;
  const child = spawn(process.execPath, [CLI_PATH, 'proxy', TARGET, '--port', '22', '--endpoint-url', env.sandbox.endpoint], { env: sandboxEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {});
  const exitCode = await within(
    new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1))),
    60_000,
    'the proxy to exit',
  );
  return { exitCode, stdout: Buffer.concat(out), stderr, sent: sent[index]! };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The rule itself: 0 only with every byte; otherwise 11, one line naming the loss, and a correct prefix. */
function expectHonest(r: ProxyOutcome): void {
  if (r.exitCode === 0) {
    expect(sha(r.stdout)).toBe(sha(r.sent));
    return;
  }
  // One line says it (resume warnings may come before it).
  const finalLines = r.stderr.split('\n').filter((l) => l.startsWith('ssm-bridge:'));
  expect({ exitCode: r.exitCode, finalLines: finalLines.length }).toEqual({ exitCode: 11, finalLines: 1 });
  expect(r.stderr).toMatch(/message.* the agent had sent never arrived/);
  expect(r.stdout.length).toBeLessThan(r.sent.length);
  // What was delivered is exactly the start of what was sent: nothing after the gap, nothing garbled.
  expect(sha(r.stdout)).toBe(sha(r.sent.subarray(0, r.stdout.length)));
}

describe('proxy never exits 0 with bytes missing', () => {
  it('no faults: every byte, exit 0', async () => {
    downloadBytes = 2 * MiB;
    const r = await runProxy();
    expect(r.exitCode).toBe(0);
    expectHonest(r);
  });

  it('30% loss near the end: the agent gives up after 2 s, and the proxy says so with exit 11', async () => {
    downloadBytes = 256 * 1024;
    await env.sandbox.faults.update({ dropRate: 0.3, seed: 7 });
    const r = await runProxy();
    expect(r.exitCode).toBe(11);
    expectHonest(r);
  });

  it('2% loss both ways and 8 cuts: every byte and exit 0, or exit 11 with the loss named (3 runs)', async () => {
    downloadBytes = 2 * MiB;
    for (let run = 0; run < 3; run++) {
      await env.sandbox.faults.update({ dropRate: 0.02, closeAfterBytes: (2 * MiB) / 8, seed: 100 + run });
      expectHonest(await runProxy());
    }
  }, 120_000);
});

describe('forward: a session that ends with data missing', () => {
  it('resets the open connection (not a clean end) and exits 11 with the loss named', async () => {
    const before = await sessionIds(env.sandbox.endpoint);
    const { run, port } = await startForward([TARGET, '--remote-port', '9', '--endpoint-url', env.sandbox.endpoint, '--no-reconnect']);
    try {
      await env.sandbox.faults.update({ dropRate: 0.5, seed: 3 });
      const socket = net.connect({ host: '127.0.0.1', port });
      let got = 0;
      const outcome = new Promise<string>((resolve) => {
        socket.on('data', (d: Buffer) => (got += d.length));
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        socket.on('end', () => resolve('clean end'));
      });
      await new Promise((r) => setTimeout(r, 500));
      await env.sandbox.faults.update({ dropRate: 0 });
      const { sessionId } = await newSessionSince(env.sandbox.endpoint, before);
      expect((await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${sessionId}/terminate`, { method: 'POST' })).status).toBe(200);
      expect(await within(outcome, 10_000, 'the local connection to end')).toBe('ECONNRESET');
      expect(got).toBeLessThan(512 * 1024);
      expect(await within(run.exited, 10_000, 'forward to exit')).toBe(11);
      expect(run.stderr()).toMatch(/ssm-bridge: .*never arrived/);
    } finally {
      await stopCli(run);
    }
  }, 30_000);
});

describe('proxy: a signal during the end-of-input flush', () => {
  it('SIGHUP (what ssh sends when it is done) still terminates the session, within seconds', async () => {
    const before = await sessionIds(env.sandbox.endpoint);
    const child = spawn(process.execPath, [CLI_PATH, 'proxy', TARGET, '--port', '9', '--endpoint-url', env.sandbox.endpoint], { env: sandboxEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stdin.on('error', () => {});
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await within(new Promise((r) => child.stdout.once('data', r)), 10_000, 'the first bytes');
    const { sessionId } = await newSessionSince(env.sandbox.endpoint, before);
    // The agent's destination stops taking bytes: what we send now is not acknowledged for 30 s.
    env.sandbox.gateway.applySessionFault(sessionId, { kind: 'block-destination', ms: 30_000 });
    child.stdin.end(randomBytes(64 * 1024));
    await new Promise((r) => setTimeout(r, 300));
    const signalledAt = Date.now();
    child.kill('SIGHUP');
    expect(await within(exited, 10_000, 'the proxy to exit after SIGHUP')).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(6_000);
    const state = async (): Promise<string> => ((await (await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${sessionId}`)).json()) as { state: string }).state;
    expect(await state()).toBe('terminated');
  }, 30_000);
});

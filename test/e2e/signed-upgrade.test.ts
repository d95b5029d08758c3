/**
 * The client signs its data-channel upgrade (SigV4, service ssmmessages, the session's region) at every
 * connect and every resume, as the official plugin does since 1.2.688.0. The sandbox counts the upgrades
 * whose signature it verified (counters.signedUpgrades); the CLI runs as a child process.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { sandboxEnv, startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { jsonRecords, newSessionSince, sandboxSession, sessionIds, type SandboxSessionView } from '../helpers/resume-tools.js';

const TARGET = 'i-0signed000000001';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Bytes through the tunnel's echo and back, bounded. */
async function echoThrough(port: number, bytes = 64 * 1024): Promise<void> {
  const sent = randomBytes(bytes);
  const socket = net.connect(port, '127.0.0.1');
  try {
    const received = await within(
      new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        socket.on('data', (d: Buffer) => {
          chunks.push(d);
          size += d.length;
          if (size >= bytes) resolve(Buffer.concat(chunks));
        });
        socket.on('error', reject);
        socket.write(sent);
      }),
      15_000,
      'echo through the tunnel',
    );
    expect(received.equals(sent)).toBe(true);
  } finally {
    socket.destroy();
  }
}

async function waitForSession(endpoint: string, sessionId: string, check: (s: SandboxSessionView) => boolean, what: string): Promise<SandboxSessionView> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const view = await sandboxSession(endpoint, sessionId);
    if (check(view)) return view;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(view.counters)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup(region?: string): Promise<{ endpoint: string; echo: TestServer }> {
  const echo = await echoServer();
  cleanups.push(() => echo.close());
  const env = await startTestSandbox({ [TARGET]: { ports: { '7': `127.0.0.1:${echo.port}` } } }, region ? { config: { region } } : {});
  cleanups.push(() => env.close());
  return { endpoint: env.sandbox.endpoint, echo };
}

async function forward(endpoint: string, extra: string[] = [], env = sandboxEnv()): Promise<{ port: number; run: CliRun; sessionId: string }> {
  const before = await sessionIds(endpoint);
  const { port, run } = await startForward([TARGET, '--remote-port', '7', '--endpoint-url', endpoint, '--log-format', 'json', '--log-level', 'debug', ...extra], env);
  cleanups.push(() => stopCli(run));
  const { sessionId } = await newSessionSince(endpoint, before);
  return { port, run, sessionId };
}

async function drop(endpoint: string, sessionId: string): Promise<void> {
  const res = await within(fetch(`${endpoint}/_sandbox/sessions/${encodeURIComponent(sessionId)}/drop`, { method: 'POST' }), 5_000, 'drop');
  expect(res.status).toBe(202);
}

describe('forward signs the data-channel upgrade', () => {
  it('signs the first connect and re-signs at every resume', async () => {
    const { endpoint } = await setup();
    const { port, run, sessionId } = await forward(endpoint);
    await echoThrough(port);
    let view = await waitForSession(endpoint, sessionId, (s) => s.counters.connections === 1, 'the first connection');
    expect(view.counters.signedUpgrades).toBe(1);
    for (let connections = 2; connections <= 3; connections++) {
      await drop(endpoint, sessionId);
      view = await waitForSession(endpoint, sessionId, (s) => s.state === 'connected' && s.counters.connections === connections, `connection ${connections}`);
      await echoThrough(port);
      expect(view.counters.signedUpgrades, `after resume ${connections - 1}`).toBe(connections);
    }
    expect(jsonRecords(run.stderr()).filter((r) => r.event === 'resumed')).toHaveLength(2);
    // Debug logs say nothing of the signature or the headers that carry it.
    expect(run.stderr()).not.toMatch(/AWS4-HMAC-SHA256|Signature=|x-amz-date|X-Amz-Security-Token/i);
  }, 60_000);

  it("signs for the session's region and with the session token of temporary credentials", async () => {
    const { endpoint } = await setup('eu-west-1');
    const { port, run, sessionId } = await forward(endpoint, ['--region', 'eu-west-1'], sandboxEnv({ AWS_SESSION_TOKEN: 'FwoGZXIvYXdzEXAMPLE//token' }));
    await echoThrough(port);
    const view = await waitForSession(endpoint, sessionId, (s) => s.counters.connections === 1, 'the first connection');
    expect(view.counters.signedUpgrades).toBe(1);
    expect(run.stderr()).not.toMatch(/FwoGZXIvYXdzEXAMPLE/);
  }, 60_000);
});

import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readHashed, writeRandom } from '../helpers/byte-streams.js';
import { runCli, sandboxEnv, startForward, stopCli, waitForStderr, type CliRun } from '../helpers/cli.js';
import { echoServer, exchange, exchangeServer, listenTcp, within, type TestServer } from '../helpers/servers.js';
import { startTestSandbox } from '../helpers/sandbox.js';

const TARGET = 'i-0e2e00000000000a1';
const OLD_TARGET = 'i-0e2e0000000000old';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let exchangeSrv: TestServer;
let echoSrv: TestServer;
let httpishSrv: TestServer;
const runs: CliRun[] = [];

/** Reads a request up to a blank line, answers, then closes: the half-close test's server. */
function requestReplyServer(): Promise<TestServer> {
  return listenTcp((socket) => {
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('utf8');
      if (got.includes('\r\n\r\n')) socket.end(`HTTP/1.0 200 OK\r\n\r\nyou sent ${got.length} bytes`);
    });
  }, { allowHalfOpen: true });
}

beforeAll(async () => {
  exchangeSrv = await exchangeServer();
  echoSrv = await echoServer();
  httpishSrv = await requestReplyServer();
  const ports = { '9000': `127.0.0.1:${exchangeSrv.port}`, '7': `127.0.0.1:${echoSrv.port}`, '8080': `127.0.0.1:${httpishSrv.port}`, '9999': '127.0.0.1:1' };
  env = await startTestSandbox({
    [TARGET]: { ports, remoteHosts: { 'db.internal': { '5432': `127.0.0.1:${exchangeSrv.port}` } } },
    [OLD_TARGET]: { agentVersion: '3.0.161.0', ports },
  });
});

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
  env.sandbox.faults.reset();
});

afterAll(async () => {
  await env?.close();
  await exchangeSrv?.close();
  await echoSrv?.close();
  await httpishSrv?.close();
});

function forward(args: string[]) {
  return startForward([...args, '--endpoint-url', env.sandbox.endpoint]).then((f) => {
    runs.push(f.run);
    return f;
  });
}

async function echoOnce(port: number, payload: Buffer): Promise<Buffer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= payload.length) {
        socket.destroy();
        resolve();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  return Buffer.concat(chunks);
}

describe('forward (multiplexed, current agent)', () => {
  it('moves 8 MiB each way on 16 parallel connections with SHA-256 equal', async () => {
    const { port, run } = await forward([TARGET, '--remote-port', '9000']);
    const results = await within(Promise.all(Array.from({ length: 16 }, () => exchange(port, 8 * 1024 * 1024))), 120_000, '16 × 8 MiB');
    for (const r of results) expect(r).toEqual({ upOk: true, downOk: true, received: 8 * 1024 * 1024 });
    expect(run.child.exitCode).toBeNull();
  });

  it('echoes 32 MiB both ways at once through a reader that stops for a second: no deadlock, SHA-256 equal', async () => {
    // Both windows fill while the local reader is stopped (the echo cannot write back, so it stops reading);
    // the session must recover when the reader comes back. It used to hang here for good.
    const { port, run } = await forward([TARGET, '--remote-port', '7']);
    const bytes = 32 * 1024 * 1024;
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => socket.once('connect', r));
    socket.pause();
    const up = writeRandom(socket, bytes);
    await new Promise((r) => setTimeout(r, 1_000));
    const down = readHashed(socket, bytes);
    const [sent, got] = await within(Promise.all([up.done, down.done]), 90_000, '32 MiB echoed');
    expect(got).toBe(sent);
    socket.destroy();
    expect(run.child.exitCode).toBeNull();
  });

  it('serves 200 short connections in a row', async () => {
    const { port } = await forward([TARGET, '--remote-port', '7']);
    for (let i = 0; i < 200; i++) {
      const payload = Buffer.from(`hello ${i} `.repeat(10));
      expect((await within(echoOnce(port, payload), 5_000, `connection ${i}`)).equals(payload)).toBe(true);
    }
  });

  it('honours half-close: the client shuts its write side and still reads the reply', async () => {
    const { port } = await forward([TARGET, '--remote-port', '8080']);
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let reply = '';
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    socket.on('data', (d: Buffer) => (reply += d.toString('utf8')));
    await new Promise((r) => socket.once('connect', r));
    socket.end('GET / HTTP/1.0\r\n\r\n');
    await within(ended, 10_000, 'reply after half-close');
    expect(reply).toBe('HTTP/1.0 200 OK\r\n\r\nyou sent 18 bytes');
  });

  it('reaches a host beyond the node with --remote-host', async () => {
    const { port, run } = await forward([TARGET, '--remote-host', 'db.internal', '--remote-port', '5432']);
    expect(run.stderr()).toContain(`-> db.internal:5432`);
    expect(await exchange(port, 1024 * 1024)).toEqual({ upOk: true, downOk: true, received: 1024 * 1024 });
  });

  it('listens on a unix socket with mode 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-'));
    const path = join(dir, 'fwd.sock');
    const run = runCli(['forward', TARGET, '--remote-port', '7', '--local-socket', path, '--endpoint-url', env.sandbox.endpoint]);
    runs.push(run);
    await waitForStderr(run, /Listening on .*fwd\.sock -> /);
    const { statSync } = await import('node:fs');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const socket = net.connect(path);
    const echoed = await within(
      new Promise<string>((resolve) => {
        socket.on('connect', () => socket.write('over a unix socket'));
        socket.on('data', (d: Buffer) => {
          socket.destroy();
          resolve(d.toString());
        });
      }),
      5_000,
      'unix socket echo',
    );
    expect(echoed).toBe('over a unix socket');
  });

  it('reports a refused destination and keeps the session up', async () => {
    const { port, run } = await forward([TARGET, '--remote-port', '9999']);
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    await within(new Promise((r) => socket.on('close', r)), 10_000, 'refused connection closed');
    await waitForStderr(run, new RegExp(`could not connect to port 9999 on ${TARGET}; that connection was closed`));
    expect(run.child.exitCode).toBeNull();
  });

  it('terminates the session on SIGTERM and exits 0', async () => {
    const { run } = await forward([TARGET, '--remote-port', '7']);
    const sessionId = (await listSessions()).find((s) => s.state !== 'terminated')?.sessionId;
    expect(await stopCli(run)).toBe(0);
    const after = (await listSessions()).find((s) => s.sessionId === sessionId);
    expect(after?.state).toBe('terminated');
  });

  it('exits 6 with the reason when the service ends the session', async () => {
    const { run } = await forward([TARGET, '--remote-port', '7', '--no-reconnect']);
    const live = (await listSessions()).filter((s) => s.state === 'connected');
    for (const s of live) await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${s.sessionId}/terminate`, { method: 'POST' });
    expect(await within(run.exited, 10_000, 'exit after termination')).toBe(6);
    expect(run.stderr()).toMatch(/closed by the service/);
  });
});

describe('forward (basic mode, old agent)', () => {
  it('serves connections one at a time; extra ones wait', async () => {
    const { port } = await forward([OLD_TARGET, '--remote-port', '7']);
    // Three at once: each must get its own echo, served in turn.
    const payloads = [0, 1, 2].map((i) => Buffer.from(`basic mode connection ${i} `.repeat(50)));
    const echoed = await within(Promise.all(payloads.map((p) => echoOnce(port, p))), 20_000, 'basic mode echoes');
    echoed.forEach((e, i) => expect(e.equals(payloads[i]!)).toBe(true));
    for (let i = 0; i < 5; i++) {
      const p = Buffer.from(`sequential ${i}`);
      expect((await within(echoOnce(port, p), 5_000, 'sequential')).equals(p)).toBe(true);
    }
  });
});

describe('forward errors: one line, a documented exit code, no stack trace', () => {
  async function expectFailure(args: string[], code: number, message: RegExp, extraEnv?: NodeJS.ProcessEnv): Promise<void> {
    const run = runCli(['forward', ...args], extraEnv ? { env: extraEnv } : {});
    runs.push(run);
    expect(await within(run.exited, 15_000, `exit of ${args.join(' ')}`)).toBe(code);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(run.stderr()).not.toMatch(/\n\s+at /);
  }

  it('port in use', async () => {
    const blocker = await listenTcp(() => {});
    try {
      await expectFailure([TARGET, '--remote-port', '7', '--local-port', String(blocker.port), '--endpoint-url', env.sandbox.endpoint], 5, /already in use; choose another --local-port/);
    } finally {
      await blocker.close();
    }
  });

  it('unknown target', async () => {
    await expectFailure(['i-doesnotexist00000', '--remote-port', '7', '--endpoint-url', env.sandbox.endpoint], 3, /not connected/);
  });

  it('bad document', async () => {
    await expectFailure([TARGET, '--document-name', 'No-Such-Document', '--endpoint-url', env.sandbox.endpoint], 2, /No-Such-Document/);
  });

  it('an option value outside its choices: one line', async () => {
    await expectFailure([TARGET, '--remote-port', '80', '--log-level', 'loud', '--endpoint-url', env.sandbox.endpoint], 2, /^ssm-bridge: Invalid values: Argument: log-level, Given: "loud", Choices: .* \(see ssm-bridge forward --help\)$/);
  });

  it('bad parameters JSON', async () => {
    await expectFailure([TARGET, '--document-name', 'AWS-StartPortForwardingSession', '--parameters', '{nope', '--endpoint-url', env.sandbox.endpoint], 2, /--parameters is not valid JSON/);
  });

  it('bad parameter value (the service answers InvalidParameters)', async () => {
    await expectFailure([TARGET, '--document-name', 'AWS-StartPortForwardingSession', '--parameters', '{"portNumber":["99999"]}', '--endpoint-url', env.sandbox.endpoint], 2, /parameters were rejected.*portNumber/);
  });

  it('missing remote port', async () => {
    await expectFailure([TARGET, '--endpoint-url', env.sandbox.endpoint], 2, /--remote-port is required/);
  });

  it('missing credentials', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ssm-bridge-home-'));
    const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...rest } = sandboxEnv();
    const noCreds: NodeJS.ProcessEnv = { ...rest, HOME: home, AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none') };
    await expectFailure([TARGET, '--remote-port', '7', '--endpoint-url', env.sandbox.endpoint], 4, /credentials/i, noCreds);
  });
});

async function listSessions(): Promise<Array<{ sessionId: string; state: string }>> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions`);
  return (await res.json()) as Array<{ sessionId: string; state: string }>;
}

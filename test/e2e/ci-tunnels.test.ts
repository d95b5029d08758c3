import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, stopCli, waitForStderr, type CliRun } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, exchange, exchangeServer, within, type TestServer } from '../helpers/servers.js';

/** Three nodes for `up`, each reaching the exchange server on 9000 and the echo server on 7. */
const TARGETS = ['i-0c1000000000000a1', 'i-0c1000000000000a2', 'i-0c1000000000000a3'] as const;
const OLD_TARGET = 'i-0c100000000000old';
const UNKNOWN_TARGET = 'i-0c1000000unknown0';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let exchangeSrv: TestServer;
let echoSrv: TestServer;
let workDir: string;
const runs: CliRun[] = [];

interface SandboxSession {
  sessionId: string;
  target: string;
  state: string;
}

beforeAll(async () => {
  [exchangeSrv, echoSrv] = await Promise.all([exchangeServer(), echoServer()]);
  const ports = { '9000': `127.0.0.1:${exchangeSrv.port}`, '7': `127.0.0.1:${echoSrv.port}` };
  env = await startTestSandbox({
    ...Object.fromEntries(TARGETS.map((t) => [t, { ports }])),
    [OLD_TARGET]: { agentVersion: '3.0.161.0', ports },
  });
  workDir = mkdtempSync(join(tmpdir(), 'ssm-bridge-ci-'));
});

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
  env.sandbox.faults.reset();
});

afterAll(async () => {
  await env?.close();
  await exchangeSrv?.close();
  await echoSrv?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function cli(args: string[]): CliRun {
  const run = runCli([...args, '--endpoint-url', env.sandbox.endpoint]);
  runs.push(run);
  return run;
}

/** `cli` for a command line with `-- command…`: our options go before the `--`. */
function cliWithCommand(args: string[], command: string[]): CliRun {
  const run = runCli([...args, '--endpoint-url', env.sandbox.endpoint, '--', ...command]);
  runs.push(run);
  return run;
}

async function listSessions(): Promise<SandboxSession[]> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions`);
  return (await res.json()) as SandboxSession[];
}

function writeTunnelsFile(name: string, text: string): string {
  const path = join(workDir, name);
  writeFileSync(path, text);
  return path;
}

/** A Node script run as the command: `node -e SCRIPT arg…`. */
function node(script: string, ...args: string[]): string[] {
  return [process.execPath, '-e', script, ...args];
}

/** Echo a line through $SSM_BRIDGE_LOCAL_PORT, report the session id on stderr, exit with argv[1]. */
const ECHO_AND_EXIT = `
const net = require('node:net');
const payload = 'ping through the tunnel';
const s = net.connect({ host: process.env.SSM_BRIDGE_LOCAL_ADDRESS, port: Number(process.env.SSM_BRIDGE_LOCAL_PORT) }, () => s.write(payload));
let got = '';
s.on('data', (d) => {
  got += d;
  if (got !== payload) return;
  s.destroy();
  process.stderr.write('command: echoed; session=' + process.env.SSM_BRIDGE_SESSION_ID + '\\n');
  process.exit(Number(process.argv[1]));
});
s.on('error', (e) => { process.stderr.write('command: ' + e.message + '\\n'); process.exit(99); });
`;

/** Runs until a signal; says which one it got, then exits with argv[1] (or dies of it when argv[1] is "die"). */
const WAIT_FOR_SIGNAL = `
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write('command: got ' + sig + '\\n');
    if (process.argv[1] === 'die') { process.removeAllListeners(sig); process.kill(process.pid, sig); }
    else process.exit(Number(process.argv[1]));
  });
}
process.stderr.write('command: running in session ' + process.env.SSM_BRIDGE_SESSION_ID + '\\n');
setInterval(() => {}, 1000);
`;

async function expectTerminated(sessionIds: string[]): Promise<void> {
  const sessions = await listSessions();
  for (const id of sessionIds) expect(sessions.find((s) => s.sessionId === id)?.state, `session ${id}`).toBe('terminated');
}

describe('forward -- <command>', () => {
  it('runs the command in the tunnel and exits with its status (0), then the session is terminated', async () => {
    const run = cliWithCommand(['forward', TARGETS[0], '--remote-port', '7', '--local-port', '0'], node(ECHO_AND_EXIT, '0'));
    expect(await within(run.exited, 20_000, 'exec mode exit')).toBe(0);
    const sessionId = /session=(\S+)/.exec(run.stderr())?.[1];
    expect(sessionId, run.stderr()).toMatch(/^sandbox-/);
    expect(run.stderr()).toMatch(/Listening on 127\.0\.0\.1:\d+ -> i-0c1000000000000a1:7/);
    await expectTerminated([sessionId!]);
  });

  it('exits with the status of a failing command (3)', async () => {
    const run = cliWithCommand(['forward', TARGETS[0], '--remote-port', '7', '--local-port', '0'], node(ECHO_AND_EXIT, '3'));
    expect(await within(run.exited, 20_000, 'exec mode exit')).toBe(3);
    const sessionId = /session=(\S+)/.exec(run.stderr())?.[1];
    await expectTerminated([sessionId!]);
  });

  it('passes SIGTERM to a long-running command, which sees it; the session ends too', async () => {
    const run = cliWithCommand(['forward', TARGETS[1], '--remote-port', '7', '--local-port', '0'], node(WAIT_FOR_SIGNAL, '42'));
    const sessionId = (await waitForStderr(run, /command: running in session (\S+)/))[1]!;
    run.child.kill('SIGTERM');
    expect(await within(run.exited, 15_000, 'exit after SIGTERM')).toBe(42);
    expect(run.stderr()).toContain('command: got SIGTERM');
    await expectTerminated([sessionId]);
  });

  it('reports a command killed by the signal as 128+n', async () => {
    const run = cliWithCommand(['forward', TARGETS[1], '--remote-port', '7', '--local-port', '0'], node(WAIT_FOR_SIGNAL, 'die'));
    const sessionId = (await waitForStderr(run, /command: running in session (\S+)/))[1]!;
    run.child.kill('SIGINT');
    expect(await within(run.exited, 15_000, 'exit after SIGINT')).toBe(130);
    expect(run.stderr()).toContain('command: got SIGINT');
    await expectTerminated([sessionId]);
  });

  it('stops the command and exits with the tunnel error code when the session dies', async () => {
    const run = cliWithCommand(['forward', TARGETS[2], '--remote-port', '7', '--local-port', '0', '--no-reconnect'], node(WAIT_FOR_SIGNAL, '0'));
    const sessionId = (await waitForStderr(run, /command: running in session (\S+)/))[1]!;
    await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${sessionId}/terminate`, { method: 'POST' });
    expect(await within(run.exited, 20_000, 'exit after the session died')).toBe(6);
    expect(run.stderr()).toContain('command: got SIGTERM');
    expect(run.stderr()).toMatch(/ssm-bridge: session \S+ was closed by the service/);
  });

  it('exits 127 when the command does not exist, and terminates the session', async () => {
    const run = cliWithCommand(['forward', TARGETS[0], '--remote-port', '7', '--local-port', '0', '--log-format', 'json'], ['ssm-bridge-no-such-command']);
    expect(await within(run.exited, 20_000, 'exit')).toBe(127);
    // A record with --log-format json (README "Options"): the pretty format prints `ssm-bridge: cannot run …`.
    expect(run.stderr()).toContain('"event":"error","command":"ssm-bridge-no-such-command","exitCode":127,"msg":"cannot run \\"ssm-bridge-no-such-command\\": command not found"');
    const sessionId = /"event":"listening","sessionId":"([^"]+)"/.exec(run.stderr())?.[1];
    await expectTerminated([sessionId!]);
  });
});

/** A tunnels file for the three targets, exchange server on each, free local ports. */
function threeTunnels(extra = ''): string {
  return writeTunnelsFile(
    `three-${Math.random().toString(36).slice(2)}.yaml`,
    [
      '# three nodes, one tunnel each',
      'region: us-east-1',
      'tunnels:',
      ...TARGETS.map((target, i) => [`  - name: node-${i + 1}`, `    target: ${target}`, '    remotePort: 9000', '    localPort: 0', '    localAddress: 127.0.0.1'].join('\n')),
      extra,
    ].join('\n'),
  );
}

interface ReadyFile {
  pid: number;
  tunnels: Array<{ name: string; target: string; localAddress?: string; localPort?: number; localSocket?: string; sessionId: string }>;
}

/** Poll for the ready file (bounded), every 5 ms so we read it as soon as it appears. */
async function waitForReadyFile(path: string, run: CliRun, timeoutMs = 20_000): Promise<ReadyFile> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as ReadyFile;
    if (run.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no ready file at ${path} (exit ${run.child.exitCode}); stderr:\n${run.stderr()}`);
}

describe('up -f tunnels.yaml', () => {
  it('opens three tunnels to three targets and moves data through all at once (SHA-256 both ways)', async () => {
    const readyPath = join(workDir, 'ready-three.json');
    const run = cli(['up', '-f', threeTunnels(), '--ready-file', readyPath, '--stats-interval', '200ms', '--log-format', 'json']);
    const ready = await waitForReadyFile(readyPath, run);
    expect(ready.pid).toBe(run.child.pid);
    expect(ready.tunnels.map((t) => [t.name, t.target])).toEqual(TARGETS.map((t, i) => [`node-${i + 1}`, t]));
    const bytes = 4 * 1024 * 1024;
    const results = await within(Promise.all(ready.tunnels.flatMap((t) => [exchange(t.localPort!, bytes), exchange(t.localPort!, bytes)])), 90_000, 'exchanges through three tunnels');
    for (const r of results) expect(r).toEqual({ upOk: true, downOk: true, received: bytes });

    // One listening record per tunnel, and stats that saw the bytes.
    const records = run
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const listening = records.filter((r) => r.event === 'listening');
    expect(listening.map((r) => [r.tunnel, r.localPort])).toEqual(ready.tunnels.map((t) => [t.name, t.localPort]));
    await waitForStderr(run, new RegExp(`"event":"stats","tunnel":"node-3","bytesToRemote":${bytes * 2 + 16}`), 5_000);

    expect(await stopCli(run)).toBe(0);
    await expectTerminated(ready.tunnels.map((t) => t.sessionId));
    expect(existsSync(readyPath)).toBe(false);
  });

  it('writes the ready file only once every listener accepts connections and every session is up', async () => {
    // Slow every handshake down, so listeners wait a while for their sessions.
    await fetch(`${env.sandbox.endpoint}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ delayRate: 1, delayMs: 100 }) });
    const readyPath = join(workDir, 'ready-order.json');
    const socketPath = join(workDir, 'old.sock');
    const file = threeTunnels(['  - name: old-agent', `    target: ${OLD_TARGET}`, '    remotePort: 7', `    localSocket: ${socketPath}`].join('\n'));
    const run = cli(['up', '-f', file, '--ready-file', readyPath]);
    const ready = await waitForReadyFile(readyPath, run);
    // At once: every session live, every listening line out, every listener accepting.
    const sessions = await listSessions();
    for (const t of ready.tunnels) expect(sessions.find((s) => s.sessionId === t.sessionId)?.state).toBe('connected');
    expect(run.stderr().match(/^Listening on /gm)).toHaveLength(4);
    await within(
      Promise.all(
        ready.tunnels.map(
          (t) =>
            new Promise<void>((resolve, reject) => {
              const socket = t.localSocket ? net.connect(t.localSocket) : net.connect({ host: t.localAddress!, port: t.localPort! });
              socket.once('connect', () => {
                socket.destroy();
                resolve();
              });
              socket.once('error', reject);
            }),
        ),
      ),
      5_000,
      'connect to every listener',
    );
    expect(ready.tunnels.find((t) => t.name === 'old-agent')).toMatchObject({ localSocket: socketPath, target: OLD_TARGET });
    env.sandbox.faults.reset();
    expect(await stopCli(run)).toBe(0);
  });

  it('runs a command with per-tunnel variables, then terminates every session', async () => {
    const script = `
      const net = require('node:net');
      const names = process.env.SSM_BRIDGE_TUNNELS.split(',');
      Promise.all(names.map((name) => new Promise((resolve, reject) => {
        const key = 'SSM_BRIDGE_' + name.toUpperCase().replace(/[^A-Z0-9]/g, '_') + '_';
        const s = net.connect({ host: process.env[key + 'LOCAL_ADDRESS'], port: Number(process.env[key + 'LOCAL_PORT']) });
        s.on('connect', () => s.end(Buffer.alloc(8)));
        s.on('data', () => {});
        s.on('end', () => resolve(process.env[key + 'SESSION_ID']));
        s.on('error', reject);
      }))).then((ids) => { process.stderr.write('command: sessions=' + ids.join(',') + '\\n'); process.exit(5); }, (e) => { process.stderr.write(String(e)); process.exit(99); });
    `;
    const run = cliWithCommand(['up', '-f', threeTunnels()], node(script));
    expect(await within(run.exited, 20_000, 'exit of up with a command')).toBe(5);
    const ids = /command: sessions=(\S+)/.exec(run.stderr())?.[1]?.split(',') ?? [];
    expect(ids).toHaveLength(3);
    await expectTerminated(ids);
  });

  it('when one session dies, the run ends with its code naming the tunnel, and the others are terminated', async () => {
    const readyPath = join(workDir, 'ready-dies.json');
    const run = cli(['up', '-f', threeTunnels(), '--ready-file', readyPath, '--no-reconnect']);
    const ready = await waitForReadyFile(readyPath, run);
    const victim = ready.tunnels[1]!;
    await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${victim.sessionId}/terminate`, { method: 'POST' });
    expect(await within(run.exited, 20_000, 'exit after a session died')).toBe(6);
    expect(run.stderr()).toMatch(new RegExp(`ssm-bridge: tunnel "node-2" \\(${TARGETS[1]}\\): session ${victim.sessionId} was closed by the service`));
    await expectTerminated(ready.tunnels.map((t) => t.sessionId));
    expect(existsSync(readyPath)).toBe(false);
  });

  it('a malformed tunnels file: an error naming the line, exit 2, no session', async () => {
    const before = (await listSessions()).length;
    const bad = writeTunnelsFile(
      'tunnels.yaml',
      ['tunnels:', '  - name: db', `    target: ${TARGETS[0]}`, '    remotePort: 9000', '  - name: cache', `    target: ${TARGETS[1]}`, '    remotePort: redis'].join('\n'),
    );
    const run = cli(['up', '-f', bad]);
    expect(await within(run.exited, 15_000, 'exit')).toBe(2);
    expect(run.stderr().trim()).toBe(`ssm-bridge: ${bad}:7: remotePort must be a port number from 1 to 65535 (got "redis")`);
    const syntax = writeTunnelsFile('syntax.yaml', ['tunnels:', '  - name: db', `    target: ${TARGETS[0]}`, '    remotePort: [9000', '  - name: x'].join('\n'));
    const run2 = cli(['up', '-f', syntax]);
    expect(await within(run2.exited, 15_000, 'exit')).toBe(2);
    expect(run2.stderr()).toMatch(/syntax\.yaml:5: not valid YAML or JSON/);
    expect((await listSessions()).length).toBe(before);
  });

  it('a tunnel with an unknown target fails the run (exit 3) naming it, and the others are terminated', async () => {
    const before = new Set((await listSessions()).map((s) => s.sessionId));
    const file = writeTunnelsFile(
      'unknown.yaml',
      [
        'tunnels:',
        `  - {name: first, target: ${TARGETS[0]}, remotePort: 9000}`,
        `  - {name: ghost, target: ${UNKNOWN_TARGET}, remotePort: 9000}`,
        `  - {name: third, target: ${TARGETS[2]}, remotePort: 7}`,
      ].join('\n'),
    );
    const run = cli(['up', '-f', file, '--ready-file', join(workDir, 'never.json')]);
    expect(await within(run.exited, 20_000, 'exit')).toBe(3);
    expect(run.stderr()).toMatch(new RegExp(`ssm-bridge: tunnel "ghost" \\(${UNKNOWN_TARGET}\\): target ${UNKNOWN_TARGET} is not connected`));
    const started = (await listSessions()).filter((s) => !before.has(s.sessionId));
    expect(started.map((s) => s.target).sort()).toEqual([TARGETS[0], TARGETS[2]]);
    for (const s of started) expect(s.state, s.target).toBe('terminated');
    expect(existsSync(join(workDir, 'never.json'))).toBe(false);
  });
});

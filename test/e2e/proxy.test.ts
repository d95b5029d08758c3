import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, sandboxEnv } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';
import { sshClientOptions, startSshd, type TestSshd } from '../helpers/sshd.js';

const TARGET = 'i-0proxy000000000001';
const UNKNOWN_TARGET = 'i-0proxy0000unknown0';
/** Mapped to a port nothing listens on: the agent's dial is refused. */
const REFUSED_PORT = '2222';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let sshd: TestSshd;
let echoSrv: TestServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  [sshd, echoSrv] = await Promise.all([startSshd(), echoServer()]);
  env = await startTestSandbox({
    [TARGET]: { ports: { '22': `127.0.0.1:${sshd.port}`, '7': `127.0.0.1:${echoSrv.port}`, [REFUSED_PORT]: '127.0.0.1:1' } },
  });
});

afterEach(async () => {
  // Anything a failed test left running: SIGKILL, bounded.
  await Promise.all(
    children.splice(0).map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      c.kill('SIGKILL');
      await within(new Promise((r) => c.once('exit', r)), 5_000, 'child exit after SIGKILL').catch(() => {});
    }),
  );
});

afterAll(async () => {
  await env?.close();
  await echoSrv?.close();
  await sshd?.stop();
});

interface Run {
  child: ChildProcess;
  stdout(): Buffer;
  stderr(): string;
  /** Exit status (or 128+signal) and how long the process ran. */
  exited: Promise<{ status: number; ms: number }>;
}

function run(command: string, args: string[], options: { stdin?: 'pipe' | 'ignore' } = {}): Run {
  const started = Date.now();
  const child = spawn(command, args, { env: sandboxEnv(), stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<{ status: number; ms: number }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ status: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), ms: Date.now() - started }));
  });
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, exited };
}

/** Options shared by ssh and scp: our proxy as ProxyCommand, plus the shared client options (sshClientOptions). */
function sshOptions(): string[] {
  return sshClientOptions(sshd, { proxyCommand: [process.execPath, CLI_PATH, 'proxy', '%h', '--port', '%p', '--endpoint-url', env.sandbox.endpoint] });
}

function ssh(args: string[], options: { stdin?: 'pipe' | 'ignore' } = {}): Run {
  return run('ssh', [...sshOptions(), '-l', sshd.user, ...args], options);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => hash.update(d))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

interface SessionInfo {
  sessionId: string;
  target: string;
  state: string;
  terminatedReason?: string;
}

async function listSessions(): Promise<SessionInfo[]> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions`);
  return (await res.json()) as SessionInfo[];
}

async function sessionIds(): Promise<Set<string>> {
  return new Set((await listSessions()).map((s) => s.sessionId));
}

/** The sessions started since `before` all end up terminated (the proxy ends its session when ssh exits). */
async function expectNewSessionsTerminated(before: Set<string>, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  let fresh: SessionInfo[] = [];
  while (Date.now() < deadline) {
    fresh = (await listSessions()).filter((s) => !before.has(s.sessionId));
    if (fresh.length >= count && fresh.every((s) => s.state === 'terminated')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(fresh.map((s) => ({ target: s.target, state: s.state }))).toEqual(Array.from({ length: count }, () => ({ target: TARGET, state: 'terminated' })));
}

describe('proxy as ssh ProxyCommand, against a real sshd', () => {
  it('runs a remote command: its output and exit status come back, and the session is terminated after', async () => {
    const before = await sessionIds();
    const r = ssh([TARGET, 'echo hi; exit 3']);
    const { status } = await within(r.exited, 20_000, 'ssh exit');
    expect({ status, stdout: r.stdout().toString('utf8'), stderr: r.stderr() }).toEqual({ status: 3, stdout: 'hi\n', stderr: '' });
    await expectNewSessionsTerminated(before, 1);
  });

  it('scp: 32 MiB up and 32 MiB down with SHA-256 equal', async () => {
    const size = 32 * 1024 * 1024;
    const localUp = join(sshd.dir, 'up-local.bin');
    const remoteUp = join(sshd.dir, 'up-remote.bin');
    const remoteDown = join(sshd.dir, 'down-remote.bin');
    const localDown = join(sshd.dir, 'down-local.bin');
    const up = randomBytes(size);
    const down = randomBytes(size);
    writeFileSync(localUp, up);
    writeFileSync(remoteDown, down);
    const before = await sessionIds();

    // sshd runs on this machine, so "remote" paths are local files we can hash directly.
    const upload = run('scp', [...sshOptions(), '-q', localUp, `${sshd.user}@${TARGET}:${remoteUp}`]);
    const u = await within(upload.exited, 40_000, 'scp upload');
    expect({ status: u.status, stderr: upload.stderr() }).toEqual({ status: 0, stderr: '' });
    expect(await sha256File(remoteUp)).toBe(sha256(up));

    const download = run('scp', [...sshOptions(), '-q', `${sshd.user}@${TARGET}:${remoteDown}`, localDown]);
    const d = await within(download.exited, 40_000, 'scp download');
    expect({ status: d.status, stderr: download.stderr() }).toEqual({ status: 0, stderr: '' });
    expect(await sha256File(localDown)).toBe(sha256(down));

    await expectNewSessionsTerminated(before, 2);
  });

  it('ssh -tt: 200 keystrokes into a remote pty, each echoed back before the next', async () => {
    // Raw mode and no echo: the pty gives back exactly what dd copies, a byte at a time (no stdio buffering);
    // after 200 bytes dd exits and so does the session.
    const r = ssh(['-tt', TARGET, 'stty raw -echo && printf READY && exec dd bs=1 count=200 status=none'], { stdin: 'pipe' });
    const ready = async (): Promise<void> => {
      while (!r.stdout().toString('latin1').includes('READY')) {
        if (r.child.exitCode !== null) throw new Error(`ssh exited ${r.child.exitCode}: ${r.stderr()}`);
        await new Promise((res) => setTimeout(res, 10));
      }
    };
    await within(ready(), 20_000, 'remote pty ready');
    const offset = r.stdout().toString('latin1').indexOf('READY') + 'READY'.length;
    const keys = Buffer.from(Array.from({ length: 200 }, (_, i) => 0x61 + (i % 26)));
    const started = Date.now();
    for (let i = 0; i < keys.length; i++) {
      r.child.stdin!.write(keys.subarray(i, i + 1));
      const echoed = async (): Promise<void> => {
        while (r.stdout().length < offset + i + 1) {
          if (r.child.exitCode !== null) throw new Error(`ssh exited ${r.child.exitCode}: ${r.stderr()}`);
          await new Promise((res) => setTimeout(res, 1));
        }
      };
      await within(echoed(), 5_000, `echo of keystroke ${i}`);
      await new Promise((res) => setTimeout(res, 2));
    }
    const elapsed = Date.now() - started;
    const { status } = await within(r.exited, 10_000, 'ssh exit after dd');
    r.child.stdin!.destroy();
    expect(status).toBe(0);
    expect(r.stdout().subarray(offset).toString('latin1')).toBe(keys.toString('latin1'));
    // Keystrokes must not wait for a batching timer: 200 round trips well under a second each.
    expect(elapsed).toBeLessThan(20_000);
  });

  it('an unknown target: ssh fails fast with a one-line message from ssm-bridge', async () => {
    const r = ssh([UNKNOWN_TARGET, 'true']);
    const { status, ms } = await within(r.exited, 15_000, 'ssh exit');
    expect(status).toBe(255);
    expect(ms).toBeLessThan(10_000);
    const ours = r.stderr().split('\n').filter((l) => l.startsWith('ssm-bridge:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/not connected/);
    expect(r.stderr()).not.toMatch(/\n\s+at /);
  });

  it('a refused destination port: ssh fails fast with a one-line message from ssm-bridge', async () => {
    const before = await sessionIds();
    const r = ssh(['-p', REFUSED_PORT, TARGET, 'true']);
    const { status, ms } = await within(r.exited, 15_000, 'ssh exit');
    expect(status).toBe(255);
    expect(ms).toBeLessThan(10_000);
    const ours = r.stderr().split('\n').filter((l) => l.startsWith('ssm-bridge:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/refused|could not connect/i);
    await expectNewSessionsTerminated(before, 1);
  });
});

describe('proxy on its own', () => {
  it('writes nothing but session bytes to stdout, even at --log-level debug', async () => {
    const before = await sessionIds();
    const r = run(process.execPath, [CLI_PATH, 'proxy', TARGET, '--port', '7', '--endpoint-url', env.sandbox.endpoint, '--log-level', 'debug'], { stdin: 'pipe' });
    const payload = randomBytes(256 * 1024);
    r.child.stdin!.write(payload);
    const echoed = async (): Promise<void> => {
      while (r.stdout().length < payload.length) {
        if (r.child.exitCode !== null) throw new Error(`proxy exited ${r.child.exitCode}: ${r.stderr()}`);
        await new Promise((res) => setTimeout(res, 5));
      }
    };
    await within(echoed(), 15_000, 'echo through the proxy');
    r.child.stdin!.end();
    const { status } = await within(r.exited, 10_000, 'proxy exit after stdin EOF');
    expect(status).toBe(0);
    expect(r.stdout().length).toBe(payload.length);
    expect(r.stdout().equals(payload)).toBe(true);
    // The logs went somewhere: stderr.
    expect(r.stderr()).toMatch(/session/);
    await expectNewSessionsTerminated(before, 1);
  });

  it('a refused destination port: exits non-zero with the service reason on one line, every time', async () => {
    // Stream mode (AWS-StartSSHSession) learns of a failed dial only from channel_closed's Output (SPEC §5, §7),
    // which can arrive in the same read as HandshakeComplete: repeat to catch an ordering race.
    const once = async (): Promise<void> => {
      const r = run(process.execPath, [CLI_PATH, 'proxy', TARGET, '--port', REFUSED_PORT, '--endpoint-url', env.sandbox.endpoint], { stdin: 'pipe' });
      const { status } = await within(r.exited, 10_000, 'proxy exit');
      r.child.stdin!.destroy();
      // 6 (the service ended the session, with its reason) or 10 (could not connect): both say what happened.
      expect({ status: [6, 10].includes(status) ? 'failed as documented' : status, stdout: r.stdout().length, stderr: r.stderr() }).toMatchObject({
        status: 'failed as documented',
        stdout: 0,
        stderr: expect.stringMatching(/^ssm-bridge: [^\n]*(refused|could not connect)[^\n]*\n$/i),
      });
    };
    for (let round = 0; round < 4; round++) await Promise.all([once(), once()]);
  });

  it('exits 3 with one line for an unknown target', async () => {
    const r = run(process.execPath, [CLI_PATH, 'proxy', UNKNOWN_TARGET, '--endpoint-url', env.sandbox.endpoint], { stdin: 'pipe' });
    const { status } = await within(r.exited, 10_000, 'proxy exit');
    expect({ status, stdout: r.stdout().length }).toEqual({ status: 3, stdout: 0 });
    expect(r.stderr().trim().split('\n')).toHaveLength(1);
    expect(r.stderr()).toMatch(/^ssm-bridge: .*not connected/);
  });
});

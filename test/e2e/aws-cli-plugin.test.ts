/**
 * Drop-in plugin mode with the real AWS CLI: `aws ssm start-session` runs our `session-manager-plugin` shim
 * (written by `ssm-bridge install-plugin`) first on PATH, against the sandbox. Every AWS CLI found is tested: the
 * `aws` on PATH (v1 from pip here) and Debian's /usr/bin/aws (v2, which .ci/run installs).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, sandboxEnv } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { exchange, exchangeServer, within, type TestServer } from '../helpers/servers.js';
import { sshClientOptions, startSshd, type TestSshd } from '../helpers/sshd.js';

const TARGET = 'i-0awscli0000000001';
/** Mapped to the exchange server (both-way SHA-256). */
const EXCHANGE_PORT = '9';
const RESPONSE_ENV = 'AWS_SSM_START_SESSION_RESPONSE';

interface AwsCli {
  path: string;
  version: string;
}

/** The AWS CLIs on this machine: each `aws` on PATH and /usr/bin/aws, by their real file, with `aws --version`. */
function findAwsClis(): AwsCli[] {
  const candidates = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'aws')), '/usr/bin/aws'];
  const found: AwsCli[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    // pyenv's shim is a script that runs the real one: ask each for its version; one of each version.
    const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, AWS_PAGER: '' } });
    const version = /aws-cli\/(\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1];
    if (r.status !== 0 || version === undefined) continue;
    if (!found.some((c) => c.version === version)) found.push({ path, version });
  }
  return found;
}

const CLIS = findAwsClis();
if (CLIS.length === 0 && process.env.CI) throw new Error('no AWS CLI installed, and CI is set: .ci/run installs awscli');
const SKIP_REASON = CLIS.length === 0 ? 'no AWS CLI (aws) installed: apt-get install awscli, or pip install awscli (skipped outside CI only)' : '';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let sshd: TestSshd;
let exchangeSrv: TestServer;
let dir: string;
let shimDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (CLIS.length === 0) return;
  [sshd, exchangeSrv] = await Promise.all([startSshd(), exchangeServer()]);
  env = await startTestSandbox({ [TARGET]: { ports: { '22': `127.0.0.1:${sshd.port}`, [EXCHANGE_PORT]: `127.0.0.1:${exchangeSrv.port}` } } });
  dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-awscli-'));
  shimDir = join(dir, 'bin');
  const install = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', shimDir], { encoding: 'utf8', timeout: 20_000 });
  if (install.status !== 0) throw new Error(`install-plugin failed (${install.status}): ${install.stderr}`);
}, 60_000);

afterEach(async () => {
  await Promise.all(
    children.splice(0).map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
      await within(new Promise((r) => c.once('exit', r)), 5_000, 'child exit after SIGKILL').catch(() => {});
    }),
  );
});

afterAll(async () => {
  await env?.close();
  await exchangeSrv?.close();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The AWS CLI's environment: the sandbox's key pair and region, our shim first on PATH, no config from the host. */
function awsEnv(pathFirst: string = shimDir): NodeJS.ProcessEnv {
  return sandboxEnv({
    PATH: `${pathFirst}${delimiter}${process.env.PATH}`,
    // v1 reads AWS_DEFAULT_REGION, not AWS_REGION.
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    AWS_PAGER: '',
    ...(process.env.PYENV_ROOT ? { PYENV_ROOT: process.env.PYENV_ROOT } : {}),
  });
}

interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number>;
}

/** Run in its own process group (as a terminal runs a foreground job), so that a signal can go to all of it. */
function run(command: string, args: string[], runEnv: NodeJS.ProcessEnv): Run {
  const child = spawn(command, args, { env: runEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15))));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface ProcessInfo {
  pid: number;
  argv: string[];
  environ: string[];
}

/** The live processes of a process group, with their argv and environment (same user: /proc lets us read both). */
function processGroup(pgid: number): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) in parentheses: state, ppid, pgrp, …
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || Number(fields[2]) !== pgid) continue;
      const split = (file: string): string[] => readFileSync(`/proc/${name}/${file}`, 'latin1').split('\0').filter((s) => s !== '');
      found.push({ pid: Number(name), argv: split('cmdline'), environ: split('environ') });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function control(path: string): Promise<void> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/${path}`, { method: 'POST' });
  if (res.status !== 202 && res.status !== 200) throw new Error(`POST /_sandbox/${path}: ${res.status} ${await res.text()}`);
}

interface SessionInfo {
  sessionId: string;
  state: string;
  terminatedReason?: string;
  counters: { resumeSessionCalls: number; reconnects: number; signedUpgrades: number };
}

async function sessionInfo(sessionId: string): Promise<SessionInfo> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${encodeURIComponent(sessionId)}`);
  return (await res.json()) as SessionInfo;
}

async function waitForState(sessionId: string, state: string, timeoutMs = 10_000): Promise<SessionInfo> {
  const deadline = Date.now() + timeoutMs;
  let info = await sessionInfo(sessionId);
  while (info.state !== state && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    info = await sessionInfo(sessionId);
  }
  return info;
}

/**
 * Whether this AWS CLI hands a new enough plugin the response in AWS_SSM_START_SESSION_RESPONSE (aws-cli #8336,
 * November 2023) rather than in argv: asked of a stand-in plugin of the test's own that reports 9.9.9, so the
 * answer does not depend on ssm-bridge.
 */
async function cliHandsOverInEnv(cli: AwsCli): Promise<boolean> {
  const probeDir = join(dir, `probe-${cli.version}`);
  const record = join(probeDir, 'argv1');
  mkdirSync(probeDir, { recursive: true });
  writeFileSync(join(probeDir, 'session-manager-plugin'), `#!/bin/sh\nif [ "$1" = --version ]; then echo 9.9.9; exit 0; fi\nprintf '%s' "$1" > '${record}'\n`, { mode: 0o755 });
  // Not spawnSync: the sandbox answering the CLI runs in this process.
  const probe = run(cli.path, ['ssm', 'start-session', '--endpoint-url', env.sandbox.endpoint, '--target', TARGET, '--document-name', 'AWS-StartSSHSession'], awsEnv(probeDir));
  const status = await within(probe.exited, 60_000, 'the probe start-session');
  if (status !== 0) throw new Error(`the probe start-session failed (${status}): ${probe.stderr()}`);
  return readFileSync(record, 'utf8') === RESPONSE_ENV;
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

describe.skipIf(CLIS.length === 0)(`aws ssm start-session with the ssm-bridge shim${SKIP_REASON ? ` (skipped: ${SKIP_REASON})` : ''}`, () => {
  for (const cli of CLIS) {
    describe(`AWS CLI ${cli.version} (${cli.path})`, () => {
      it('port forwarding: SHA-256 both ways, a resume across a drop, the token never in argv, Ctrl-C terminates the session and leaves no process', async () => {
        const inEnv = await cliHandsOverInEnv(cli);
        const aws = run(
          cli.path,
          ['ssm', 'start-session', '--endpoint-url', env.sandbox.endpoint, '--target', TARGET, '--document-name', 'AWS-StartPortForwardingSession', '--parameters', `portNumber=${EXCHANGE_PORT},localPortNumber=0`],
          awsEnv(),
        );
        // The official plugin's lines, on stdout, which tools scrape for the port.
        const [, port, sessionId] = await waitFor('the "Port N opened" line', () => /Port (\d+) opened for sessionId (\S+)\.\n/.exec(aws.stdout()) ?? undefined);
        expect(aws.stdout()).toBe(`\nStarting session with SessionId: ${sessionId}\nPort ${port} opened for sessionId ${sessionId}.\nWaiting for connections...\n`);

        // The plugin process: our shim exec'd node with the bundle; the token is in its environment, never in argv.
        const group = processGroup(aws.child.pid!);
        const plugin = group.find((p) => p.argv.includes(CLI_PATH) && p.argv.includes('plugin'));
        expect(plugin, JSON.stringify(group.map((p) => p.argv.slice(0, 3)))).toBeDefined();
        if (inEnv) {
          expect(plugin!.argv[plugin!.argv.indexOf('plugin') + 1]).toBe(RESPONSE_ENV);
          const response = plugin!.environ.find((e) => e.startsWith(`${RESPONSE_ENV}=`));
          const token = (JSON.parse(response!.slice(RESPONSE_ENV.length + 1)) as { TokenValue: string }).TokenValue;
          expect(token.length).toBeGreaterThan(10);
          for (const p of processGroup(aws.child.pid!)) expect(p.argv.join(' ')).not.toContain(token);
        } else {
          // An AWS CLI from before the handover puts the response in argv whatever the plugin's version.
          console.log(`[aws-cli-plugin] AWS CLI ${cli.version} predates AWS_SSM_START_SESSION_RESPONSE: it passes the token in argv, whatever the plugin`);
        }

        const first = await within(exchange(Number(port), 2 * 1024 * 1024), 30_000, 'exchange before the drop');
        expect(first).toEqual({ upOk: true, downOk: true, received: 2 * 1024 * 1024 });

        await control(`sessions/${encodeURIComponent(sessionId!)}/drop`);
        const second = await within(exchange(Number(port), 2 * 1024 * 1024), 30_000, 'exchange after the drop');
        expect(second).toEqual({ upOk: true, downOk: true, received: 2 * 1024 * 1024 });
        const resumed = await sessionInfo(sessionId!);
        expect(resumed.counters.resumeSessionCalls).toBeGreaterThanOrEqual(1);
        expect(resumed.counters.reconnects).toBeGreaterThanOrEqual(1);
        // Every connection, the first and the resumed ones, signed with the credentials of the AWS CLI's chain.
        expect(resumed.counters.signedUpgrades).toBe(resumed.counters.reconnects + 1);
        expect(resumed.state).toBe('connected');

        // Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
        process.kill(-aws.child.pid!, 'SIGINT');
        const status = await within(aws.exited, 15_000, 'aws exit after SIGINT');
        // stderr: our logs only (warn and up by default): the drop, and nothing else.
        const logLines = aws.stderr().split('\n').filter(Boolean);
        expect({ status, unexpected: logLines.filter((l) => !/ WARN connection to the service lost; resuming event=disconnected /.test(l)) }).toEqual({ status: 0, unexpected: [] });
        expect(logLines.length).toBeGreaterThanOrEqual(1);
        expect(aws.stdout()).toContain(`\n\nExiting session with sessionId: ${sessionId}.\n\n`);
        expect((await waitForState(sessionId!, 'terminated')).state).toBe('terminated');
        const left = await waitFor('the process group to be empty', () => (processGroup(aws.child.pid!).length === 0 ? true : undefined), 5_000).catch(() => processGroup(aws.child.pid!));
        expect(left).toBe(true);
      }, 120_000);

      it('ssh ProxyCommand through aws ssm start-session (AWS-StartSSHSession): a remote command, and 32 MiB by scp each way', async () => {
        const proxyCommand = ['aws', 'ssm', 'start-session', '--target', '%h', '--document-name', 'AWS-StartSSHSession', '--parameters', 'portNumber=%p', '--endpoint-url', env.sandbox.endpoint];
        // ssh runs ProxyCommand through the shell with its own PATH: this CLI's directory right after the shim.
        const sshEnv = awsEnv(`${shimDir}${delimiter}${join(cli.path, '..')}`);
        const options = sshClientOptions(sshd, { proxyCommand });

        const r = run('ssh', [...options, '-l', sshd.user, TARGET, 'echo hi; exit 3'], sshEnv);
        const status = await within(r.exited, 60_000, 'ssh exit');
        expect({ status, stdout: r.stdout(), stderr: r.stderr() }).toEqual({ status: 3, stdout: 'hi\n', stderr: '' });

        const size = 32 * 1024 * 1024;
        const tag = cli.version.replace(/\W/g, '_');
        const localUp = join(sshd.dir, `up-local-${tag}.bin`);
        const remoteUp = join(sshd.dir, `up-remote-${tag}.bin`);
        const remoteDown = join(sshd.dir, `down-remote-${tag}.bin`);
        const localDown = join(sshd.dir, `down-local-${tag}.bin`);
        const up = randomBytes(size);
        const down = randomBytes(size);
        writeFileSync(localUp, up);
        writeFileSync(remoteDown, down);
        const upload = run('scp', [...options, '-q', localUp, `${sshd.user}@${TARGET}:${remoteUp}`], sshEnv);
        expect({ status: await within(upload.exited, 90_000, 'scp upload'), stderr: upload.stderr() }).toEqual({ status: 0, stderr: '' });
        expect(await sha256File(remoteUp)).toBe(sha256(up));
        const download = run('scp', [...options, '-q', `${sshd.user}@${TARGET}:${remoteDown}`, localDown], sshEnv);
        expect({ status: await within(download.exited, 90_000, 'scp download'), stderr: download.stderr() }).toEqual({ status: 0, stderr: '' });
        expect(await sha256File(localDown)).toBe(sha256(down));
      }, 240_000);
    });
  }
});

/**
 * `ssm-bridge plugin` and `install-plugin` as child processes, without a sandbox: sessions that are not Port
 * sessions go to the official plugin (a stub here that records what it got), or fail with one clear line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PLUGIN_PATHS } from '../../src/cli/plugin-shim.js';
import { CLIENT_VERSION } from '../../src/protocol/index.js';
import { CLI_PATH, runCli, sandboxEnv } from '../helpers/cli.js';
import { startHostileService } from '../helpers/hostile-service.js';
import { within } from '../helpers/servers.js';
import { encodeHandshakeRequest, PayloadType } from '../../src/protocol/index.js';

const TOKEN = 'hand-made-token-0123456789abcdef';
const RESPONSE = JSON.stringify({ SessionId: 'sess-fallback-1', TokenValue: TOKEN, StreamUrl: 'wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/sess-fallback-1?role=publish_subscribe' });
const SHELL_REQUEST = JSON.stringify({ Target: 'i-0123456789abcdef0', DocumentName: 'SSM-SessionManagerRunShell' });
/** Nothing listens there: the TerminateSession of a session we cannot serve fails at once. */
const DEAD_ENDPOINT = 'http://127.0.0.1:1';
const PLUGIN_ARGS = ['AWS_SSM_START_SESSION_RESPONSE', 'us-east-1', 'StartSession', '', SHELL_REQUEST, DEAD_ENDPOINT];

let dir: string;
let stub: string;
let record: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-plugin-'));
  record = join(dir, 'record');
  stub = join(dir, 'official', 'session-manager-plugin');
  mkdirSync(dirname(stub));
  // A stand-in official plugin: its arguments NUL-separated, then the response variable; exits 7.
  writeFileSync(stub, `#!/bin/sh\nprintf '%s\\0' "$@" > '${record}.args'\nprintf '%s' "$AWS_SSM_START_SESSION_RESPONSE" > '${record}.env'\nexit 7\n`, { mode: 0o755 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** PATH without any session-manager-plugin: only the directories given. */
function pluginEnv(extra: Record<string, string>, path: string): NodeJS.ProcessEnv {
  return sandboxEnv({ AWS_SSM_START_SESSION_RESPONSE: RESPONSE, PATH: path, ...extra });
}

function recorded(): { args: string[]; env: string } {
  const args = readFileSync(`${record}.args`, 'utf8').split('\0');
  args.pop();
  return { args, env: readFileSync(`${record}.env`, 'utf8') };
}

describe('plugin: sessions that are not Port sessions', () => {
  it('a shell document runs the official plugin (SSM_BRIDGE_FALLBACK_PLUGIN) with the same arguments and environment, and exits with its status', async () => {
    rmSync(`${record}.args`, { force: true });
    const run = runCli(['plugin', ...PLUGIN_ARGS], { env: pluginEnv({ SSM_BRIDGE_FALLBACK_PLUGIN: stub }, '/usr/bin:/bin') });
    const status = await within(run.exited, 15_000, 'plugin exit');
    expect({ status, stderr: run.stderr(), stdout: run.stdout() }).toEqual({ status: 7, stderr: '', stdout: '' });
    expect(recorded()).toEqual({ args: PLUGIN_ARGS, env: RESPONSE });
  });

  it('no document (aws ecs execute-command, or a plain shell), with the response in argv: the official plugin found on PATH after our shim', async () => {
    const shimDir = join(dir, 'shim-first');
    const install = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', shimDir], { encoding: 'utf8', timeout: 20_000 });
    expect(install.status).toBe(0);
    rmSync(`${record}.args`, { force: true });
    const args = [RESPONSE, 'us-east-1', 'StartSession', 'dev', JSON.stringify({ Target: 'ecs:cluster_task_container' }), DEAD_ENDPOINT];
    // Through the shim, as the AWS CLI runs it: our shim is first on PATH and must be skipped as the fallback.
    const child = spawn(join(shimDir, 'session-manager-plugin'), args, { env: pluginEnv({}, `${shimDir}:${dirname(stub)}:/usr/bin:/bin`), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const status = await within(new Promise<number | null>((resolve) => child.on('exit', resolve)), 15_000, 'shim exit');
    expect({ status, stderr }).toEqual({ status: 7, stderr: '' });
    expect(recorded().args).toEqual(args);
  });

  it('no official plugin: one clear line, exit 2, never the token', async () => {
    const present = DEFAULT_PLUGIN_PATHS.filter((p) => existsSync(p));
    expect(present, 'an official plugin is installed on this machine; this test needs none').toEqual([]);
    for (const request of [SHELL_REQUEST, JSON.stringify({ Target: 'i-0123456789abcdef0' })]) {
      const args = ['plugin', 'AWS_SSM_START_SESSION_RESPONSE', 'us-east-1', 'StartSession', '', request, DEAD_ENDPOINT];
      const run = runCli(args, { env: pluginEnv({}, '/usr/bin:/bin') });
      const status = await within(run.exited, 20_000, 'plugin exit');
      expect(status).toBe(2);
      const lines = run.stderr().split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^ssm-bridge: (document SSM-SessionManagerRunShell starts a shell or command session|this is a shell session \(no document\)), and ssm-bridge serves Port sessions only .*need the official session-manager-plugin: install it, or set SSM_BRIDGE_FALLBACK_PLUGIN to its path$/);
      expect(run.stderr()).not.toContain(TOKEN);
    }
  });

  it('SSM_BRIDGE_FALLBACK_PLUGIN that is not an executable, or is our own shim: one line, exit 2', async () => {
    const notExecutable = join(dir, 'not-executable');
    writeFileSync(notExecutable, 'data');
    const ownShim = join(dir, 'shim-first', 'session-manager-plugin');
    for (const [path, message] of [
      [notExecutable, /SSM_BRIDGE_FALLBACK_PLUGIN \(".*not-executable"\) is not an executable file/],
      [ownShim, /SSM_BRIDGE_FALLBACK_PLUGIN \(".*"\) is ssm-bridge's own shim/],
    ] as const) {
      const run = runCli(['plugin', ...PLUGIN_ARGS], { env: pluginEnv({ SSM_BRIDGE_FALLBACK_PLUGIN: path }, '/usr/bin:/bin') });
      expect(await within(run.exited, 20_000, 'plugin exit')).toBe(2);
      expect(run.stderr()).toMatch(message);
      expect(run.stderr().trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('plugin: a custom document that turns out not to be a Port document', () => {
  it('the handshake says Standard_Stream: one line naming the document, exit 2, TerminateSession called and StartSession never', async () => {
    const service = await startHostileService({
      onConnection(peer) {
        peer.send(PayloadType.HandshakeRequest, encodeHandshakeRequest({ AgentVersion: '3.3.2746.0', RequestedClientActions: [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'Standard_Stream', Properties: {} } }] }));
      },
    });
    try {
      const response = JSON.stringify({ SessionId: 'hostile-1', TokenValue: TOKEN, StreamUrl: `${service.endpoint.replace('http:', 'ws:')}/v1/data-channel/hostile-1?role=publish_subscribe` });
      const request = JSON.stringify({ Target: 'i-0123456789abcdef0', DocumentName: 'My-Shell-Document' });
      const run = runCli(['plugin', 'AWS_SSM_START_SESSION_RESPONSE', 'us-east-1', 'StartSession', '', request, service.endpoint], { env: sandboxEnv({ AWS_SSM_START_SESSION_RESPONSE: response }) });
      const status = await within(run.exited, 20_000, 'plugin exit');
      expect({ status, stdout: run.stdout() }).toEqual({ status: 2, stdout: '' });
      expect(run.stderr()).toMatch(/^ssm-bridge: document My-Shell-Document is not a Port document \(Standard_Stream session\); .* run this one with the official session-manager-plugin/);
      expect(run.stderr().trim().split('\n')).toHaveLength(1);
      expect(service.calls).toEqual(['TerminateSession']);
    } finally {
      await service.close();
    }
  });
});

describe('plugin: arguments', () => {
  it('--version prints the plugin-style version; no arguments says it is installed; bad ones get one line and exit 2', async () => {
    const version = runCli(['plugin', '--version']);
    expect({ status: await version.exited, stdout: version.stdout(), stderr: version.stderr() }).toEqual({ status: 0, stdout: `${CLIENT_VERSION}\n`, stderr: '' });
    const bare = runCli(['plugin']);
    expect(await bare.exited).toBe(0);
    expect(bare.stdout()).toContain('installed successfully');
    const missing = runCli(['plugin', ...PLUGIN_ARGS], { env: sandboxEnv() });
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toBe('ssm-bridge: environment variable AWS_SSM_START_SESSION_RESPONSE (argument 1) is not set; the AWS CLI sets it for the plugin, so run this through aws ssm start-session\n');
  });
});

describe('install-plugin', () => {
  it('writes an executable shim that runs ssm-bridge plugin, replaces its own, and --uninstall removes it', async () => {
    const target = join(dir, 'install');
    const first = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', target], { encoding: 'utf8', timeout: 20_000 });
    expect(first.status).toBe(0);
    expect(first.stderr).toContain(`Wrote ${join(target, 'session-manager-plugin')}`);
    expect(first.stderr).toContain(`export PATH="${target}:$PATH"`);
    const shim = join(target, 'session-manager-plugin');
    expect(statSync(shim).mode & 0o777).toBe(0o755);
    const version = spawnSync(shim, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: version.status, stdout: version.stdout }).toEqual({ status: 0, stdout: `${CLIENT_VERSION}\n` });

    const again = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', target], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: again.status, replaced: again.stderr.includes(`Replaced ${shim}`) }).toEqual({ status: 0, replaced: true });

    const removed = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', target, '--uninstall'], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: removed.status, exists: existsSync(shim) }).toEqual({ status: 0, exists: false });
    const nothing = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', target, '--uninstall'], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: nothing.status, stderr: nothing.stderr }).toEqual({ status: 0, stderr: `Nothing to remove: ${shim} does not exist.\n` });
  });

  it('refuses to overwrite or remove a session-manager-plugin it did not write (exit 2, the file untouched)', () => {
    const target = join(dir, 'foreign');
    mkdirSync(target);
    const foreign = join(target, 'session-manager-plugin');
    writeFileSync(foreign, '\x7fELF the official plugin');
    chmodSync(foreign, 0o755);
    const install = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', target], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: install.status, stderr: install.stderr }).toEqual({ status: 2, stderr: `ssm-bridge: ${foreign} exists and was not written by ssm-bridge (the official plugin?); not overwriting it — choose another --dir, or move that file away\n` });
    const uninstall = spawnSync(process.execPath, [CLI_PATH, 'install-plugin', '--dir', target, '--uninstall'], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: uninstall.status, stderr: uninstall.stderr }).toEqual({ status: 2, stderr: `ssm-bridge: ${foreign} was not written by ssm-bridge (the official plugin?); not removing it\n` });
    expect(readFileSync(foreign, 'utf8')).toBe('\x7fELF the official plugin');
  });
});

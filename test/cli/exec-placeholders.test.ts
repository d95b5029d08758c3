import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PAGE, DEMO_TARGET } from '../../src/sandbox/demo-services.js';
import { expandPlaceholders } from '../../src/cli/run-command.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let dir: string;

beforeAll(async () => {
  env = await startTestSandbox();
  dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-exec-'));
});
afterAll(async () => {
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function finished(run: CliRun): Promise<number> {
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 20_000);
  const code = await run.exited;
  clearTimeout(timer);
  return code;
}

/** A command that fetches http://<argv[1]>:<argv[2]>/ and prints the page, then its other arguments as JSON. */
const FETCH_AND_ECHO = "fetch(`http://${process.argv[1]}:${process.argv[2]}/`).then((r) => r.text()).then((t) => console.log(t + JSON.stringify(process.argv.slice(3))))";

describe('exec mode placeholders', () => {
  it('forward: {host} and {port} name the tunnel without a shell; {{port}} and ${…} stay literal', async () => {
    const run = runCli(['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', env.sandbox.endpoint, '--', process.execPath, '-e', FETCH_AND_ECHO, '{host}', '{port}', '{{port}}', '${HOME}', '{"a":{"b":1}}', '{}', 'port={port}']);
    expect(await finished(run)).toBe(0);
    const port = /Listening on 127\.0\.0\.1:(\d+)/.exec(run.stderr())![1];
    expect(run.stdout()).toBe(`${DEMO_PAGE}${JSON.stringify(['{port}', '${HOME}', '{"a":{"b":1}}', '{}', `port=${port}`])}\n`);
  });

  it('up: {<name>.host} and {<name>.port} per tunnel', async () => {
    const file = join(dir, 'tunnels.yaml');
    writeFileSync(file, ['tunnels:', `  - { name: web, target: ${DEMO_TARGET}, remotePort: 80 }`, `  - { name: echo, target: ${DEMO_TARGET}, remotePort: 7 }`, `endpointUrl: ${env.sandbox.endpoint}`].join('\n'));
    const run = runCli(['up', '-f', file, '--', process.execPath, '-e', FETCH_AND_ECHO, '{web.host}', '{web.port}', '{echo.port}']);
    expect(await finished(run)).toBe(0);
    const echoPort = /Listening on 127\.0\.0\.1:(\d+) -> \S+ \(echo\)/.exec(run.stderr())![1];
    expect(run.stdout()).toBe(`${DEMO_PAGE}${JSON.stringify([echoPort])}\n`);
  });

  it('an unknown placeholder, or {socket} of a TCP tunnel, fails before any session, exit 2', async () => {
    const before = ((await (await fetch(`${env.sandbox.endpoint}/_sandbox/sessions`)).json()) as unknown[]).length;
    for (const [placeholder, message] of [
      ['{prot}', /^ssm-bridge: unknown placeholder \{prot\} in the command \(known: \{host\}, \{port\}, \{socket\}\); write \{\{prot\}\} for a literal \{prot\}$/],
      ['{socket}', /^ssm-bridge: the command's \{socket\}: the tunnel is a TCP listener \(\{host\}, \{port\}\)$/],
    ] as const) {
      const run = runCli(['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', env.sandbox.endpoint, '--', 'echo', placeholder]);
      expect(await finished(run)).toBe(2);
      expect(run.stderr().trim()).toMatch(message);
    }
    const after = ((await (await fetch(`${env.sandbox.endpoint}/_sandbox/sessions`)).json()) as unknown[]).length;
    expect(after).toBe(before);
  });

  it('expands unix sockets and names the tunnels of up in its errors', () => {
    const unix = [{ name: 'cache', endpoint: { kind: 'unix' as const, path: '/tmp/c.sock' } }, { name: 'db', endpoint: { kind: 'tcp' as const, address: '127.0.0.1', port: 5 } }];
    expect(expandPlaceholders(['redis-cli', '-s', '{cache.socket}', '{db.port}'], unix, true)).toEqual(['redis-cli', '-s', '/tmp/c.sock', '5']);
    expect(() => expandPlaceholders(['{port}'], unix, true)).toThrow(/with 2 tunnels, name one: \{<name>\.port\}/);
    expect(() => expandPlaceholders(['{cache.port}'], unix, true)).toThrow(/tunnel "cache" is a unix socket/);
  });
});

describe('completion and help', () => {
  it('ssm-bridge completion prints a bash/zsh script; the completions know each command\'s options', async () => {
    const script = runCli(['completion']);
    expect(await finished(script)).toBe(0);
    expect(script.stdout()).toMatch(/complete .*-F _ssm-bridge_yargs_completions ssm-bridge/);
    const words = runCli(['--get-yargs-completions', 'forward', '--rem']);
    expect(await finished(words)).toBe(0);
    expect(words.stdout().split('\n')).toEqual(expect.arrayContaining(['--remote-port', '--remote-host']));
    const commands = runCli(['--get-yargs-completions', '']);
    expect(await finished(commands)).toBe(0);
    expect(commands.stdout()).toMatch(/^forward/m);
  });

  it('every command\'s --help has examples', async () => {
    for (const command of ['forward', 'up', 'proxy', 'sandbox']) {
      const run = runCli([command, '--help']);
      expect(await finished(run)).toBe(0);
      expect(run.stdout(), command).toMatch(new RegExp(`Examples:\\n\\s+(ssh -o ProxyCommand="ssm-bridge proxy|ssm-bridge ${command})`));
    }
  });
});

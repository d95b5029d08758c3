import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PAGE, DEMO_TARGET } from '../../src/sandbox/demo-services.js';
import { closest, editDistance } from '../../src/cli/suggest.js';
import { runCli, sandboxEnv, stopCli, waitForStderr } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';

// Bad input: one actionable line on stderr and a documented exit code (README "Exit codes").
let env: Awaited<ReturnType<typeof startTestSandbox>>;

beforeAll(async () => {
  env = await startTestSandbox();
});
afterAll(async () => {
  await env?.close();
});

async function fails(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; line: string }> {
  const run = runCli(args, { env: sandboxEnv(extraEnv), stdin: 'ignore' });
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 20_000);
  const code = await run.exited;
  clearTimeout(timer);
  const lines = run.stderr().split('\n').filter(Boolean);
  expect(lines, run.stderr()).toHaveLength(1);
  return { code, line: lines[0]! };
}

describe('messages', () => {
  it('--remote-port abc says what was given', async () => {
    expect(await fails(['forward', DEMO_TARGET, '--remote-port', 'abc'])).toEqual({ code: 2, line: 'ssm-bridge: --remote-port must be a port number from 1 to 65535 (got "abc")' });
  });

  it('--endpoint-url without a scheme: no TypeError, a suggestion', async () => {
    expect(await fails(['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', '127.0.0.1:4566'])).toEqual({
      code: 2,
      line: 'ssm-bridge: --endpoint-url must be an http:// or https:// URL (got "127.0.0.1:4566"); did you mean http://127.0.0.1:4566?',
    });
  });

  it('connection refused: hints at a stopped sandbox', async () => {
    const { code, line } = await fails(['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', 'http://127.0.0.1:1']);
    expect(code).toBe(9);
    expect(line).toMatch(/^ssm-bridge: StartSession failed: connect ECONNREFUSED 127\.0\.0\.1:1; nothing listens at http:\/\/127\.0\.0\.1:1: .*is `ssm-bridge sandbox` running there\?$/);
  });

  it('connection refused through AWS_ENDPOINT_URL_SSM names that endpoint too', async () => {
    const { code, line } = await fails(['forward', DEMO_TARGET, '--remote-port', '80'], { AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:1' });
    expect(code).toBe(9);
    expect(line).toContain('nothing listens at http://127.0.0.1:1');
  });

  it('a DNS failure: hints at the region or a missing --endpoint-url', async () => {
    // --log-level error: the cleartext-endpoint warning (not loopback, not https) is not what this test is about.
    const { code, line } = await fails(['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', 'http://ssm-bridge-test.invalid:1', '--log-level', 'error']);
    expect(code).toBe(9);
    expect(line).toMatch(/(ENOTFOUND|EAI_AGAIN) ssm-bridge-test\.invalid \(DNS\); check the host name in http:\/\/ssm-bridge-test\.invalid:1$/);
  });

  it('an unknown command, with "did you mean"', async () => {
    expect(await fails(['fowrard', DEMO_TARGET])).toEqual({ code: 2, line: 'ssm-bridge: unknown command "fowrard"; did you mean "forward"? (commands: forward, up, proxy, sandbox, completion; see ssm-bridge --help)' });
    expect((await fails(['frobnicate'])).line).toBe('ssm-bridge: unknown command "frobnicate" (commands: forward, up, proxy, sandbox, completion; see ssm-bridge --help)');
  });

  it('a mistyped option, with "did you mean", listed once', async () => {
    expect(await fails(['forward', DEMO_TARGET, '--remote-prot', '80'])).toEqual({ code: 2, line: 'ssm-bridge: forward: unknown option --remote-prot (did you mean --remote-port?) (see ssm-bridge forward --help)' });
    expect((await fails(['sandbox', '--prot', '0'])).line).toBe('ssm-bridge: sandbox: unknown option --prot (did you mean --port?) (see ssm-bridge sandbox --help)');
  });

  it('a missing target, with an example', async () => {
    expect(await fails(['forward', '--remote-port', '80'])).toEqual({ code: 2, line: 'ssm-bridge: forward needs a target, the managed node\'s id: ssm-bridge forward i-0123456789abcdef0 --remote-port 5432 (see ssm-bridge forward --help)' });
    expect((await fails(['proxy'])).line).toMatch(/^ssm-bridge: proxy needs a target/);
  });

  it('a Name tag as target: only ids are accepted', async () => {
    const { code, line } = await fails(['forward', 'web-server', '--remote-port', '80', '--endpoint-url', env.sandbox.endpoint]);
    expect(code).toBe(3);
    expect(line).toMatch(/^ssm-bridge: target web-server is not connected .*"web-server" is not an instance id: targets are ids \(i-…, mi-…\), not Name tags/);
  });

  it('proxy --remote-host: a host beyond the node on stdio', async () => {
    const run = runCli(['proxy', DEMO_TARGET, '--remote-host', 'web.internal', '--port', '80', '--endpoint-url', env.sandbox.endpoint]);
    run.child.stdin!.write('GET / HTTP/1.0\r\n\r\n');
    const deadline = Date.now() + 15_000;
    while (!run.stdout().includes(DEMO_PAGE) && Date.now() < deadline && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    expect(run.stdout()).toContain(DEMO_PAGE);
    expect(run.stdout()).toMatch(/^HTTP\/1\.1 200 OK/);
    await stopCli(run);
    expect((await fails(['proxy', DEMO_TARGET, '--remote-host', 'web.internal', '--document-name', 'X'])).line).toMatch(/--remote-host picks the document .*not both/);
  });

  it('forward still names a refused destination in one warning (with the session id and the destination)', async () => {
    const run = runCli(['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', env.sandbox.endpoint, '--remote-host', 'nowhere.internal', '--log-format', 'json']);
    await waitForStderr(run, /"event":"listening"/);
    const port = Number(/"localPort":(\d+)/.exec(run.stderr())![1]);
    await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
    const m = await waitForStderr(run, /\{[^\n]*"event":"connect-to-port-error"[^\n]*\}/);
    expect(JSON.parse(m[0])).toMatchObject({ sessionId: expect.stringMatching(/^sandbox-/), destination: `nowhere.internal:80 (through ${DEMO_TARGET})` });
    await stopCli(run);
  });
});

describe('did you mean', () => {
  it('counts edits, a swap as one, and suggests only close words', () => {
    expect(editDistance('fowrard', 'forward')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(closest('remote-prot', ['remote-port', 'remote-host'])).toBe('remote-port');
    expect(closest('xyz', ['forward', 'up'])).toBeUndefined();
    expect(closest('pu', ['forward', 'up', 'proxy'])).toBe('up');
  });
});

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { within } from '../helpers/servers.js';

/* Bad input from the user: one line, the documented exit code, before any AWS call (issue 15). */

const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-codes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Nothing listens here: a run that got past the checks would fail with a network error (exit 9), not 2.
const NOWHERE = 'http://127.0.0.1:9';

async function failsWith(args: string[], code: number, pattern: RegExp): Promise<string> {
  const run = runCli(args);
  expect(await within(run.exited, 20_000, `ssm-bridge ${args.slice(0, 2).join(' ')}`)).toBe(code);
  const lines = run.stderr().trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  return lines[0]!;
}

describe('wrong input gets the right code and one line', () => {
  it('a negative duration or port is named as such (not yargs "Unknown arguments")', async () => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--resume-timeout', '-5s', '--endpoint-url', NOWHERE], 2, /--resume-timeout must be a duration .*\(got "-5s"\)$/);
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '-80', '--endpoint-url', NOWHERE], 2, /--remote-port must be a port number from 1 to 65535 \(got "-80"\)$/);
  });

  it('--local-socket with --local-port is an error, not a port silently ignored', async () => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--local-socket', join(dir, 's'), '--local-port', '5432', '--endpoint-url', NOWHERE], 2, /--local-socket cannot be combined with --local-port/);
  });

  it('a tunnels file nested thousands of levels deep: exit 2 naming the file, no stack overflow', async () => {
    const file = join(dir, 'deep.yaml');
    writeFileSync(file, `tunnels: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
    await failsWith(['up', '-f', file, '--endpoint-url', NOWHERE], 2, /deep\.yaml: nested more than 64 levels deep/);
  });

  it('a socket path over the system limit: exit 2, and no truncated socket left behind', async () => {
    const path = join(dir, 'x'.repeat(200));
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--local-socket', path, '--endpoint-url', NOWHERE], 2, /--local-socket path is \d+ bytes; unix sockets allow at most 107/);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(path.slice(0, 107))).toBe(false);
  });

  it('a socket in a directory that does not exist: exit 2, saying so (not "use a port above 1023")', async () => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--local-socket', join(dir, 'missing', 'app.sock'), '--endpoint-url', NOWHERE], 2, /directory of .* does not exist/);
  });

  it('--stats-interval 100000h: exit 2 (the timer would overflow into a line every millisecond)', async () => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--stats-interval', '100000h', '--endpoint-url', NOWHERE], 2, /--stats-interval is too long/);
  });

  it('a huge target is not echoed whole', async () => {
    const line = await failsWith(['forward', 'x'.repeat(100_000), '--remote-port', '80', '--endpoint-url', NOWHERE], 2, /target must be 1 to 400 characters/);
    expect(line.length).toBeLessThan(300);
  });

  it.each([
    ['', /--endpoint-url is empty/],
    ['not a url', /--endpoint-url must be an http:\/\/ or https:\/\/ URL/],
    ['ftp://127.0.0.1:21', /--endpoint-url must be an http:\/\/ or https:\/\/ URL/],
  ])('--endpoint-url %j: exit 2', async (url, pattern) => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', url], 2, pattern);
  });

  it('--ready-file in a directory that does not exist: exit 2 before any session', async () => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--ready-file', join(dir, 'missing', 'ready.json'), '--endpoint-url', NOWHERE], 2, /the directory of the ready file .* does not exist; check --ready-file/);
  });

  it.each(['not an ip', '192.0.2.1'])('--local-address %j (not an address of this machine): exit 2, one line, no exposure warning', async (address) => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--local-address', address, '--endpoint-url', NOWHERE], 2, /is not an address of this machine; check --local-address/);
  });

  it('--local-port abc: exit 2, not "(got null)"', async () => {
    await failsWith(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--local-port', 'abc', '--endpoint-url', NOWHERE], 2, /--local-port must be a port number from 0 to 65535 \(got "abc"\)$/);
  });

  it('a malformed --region: exit 2', async () => {
    await failsWith(['proxy', 'i-0123456789abcdef0', '--region', 'not a region', '--endpoint-url', NOWHERE], 2, /--region must be a region name/);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSMClient, StartSessionCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { runCli, stopCli, waitForStderr } from '../helpers/cli.js';
import { within } from '../helpers/servers.js';

// `ssm-bridge sandbox` with bad input: one line, exit 2 (or 5 for a port in use), no stack trace.
async function failsWith(args: string[], code: number, line: RegExp): Promise<void> {
  const run = runCli(['sandbox', ...args]);
  expect(await within(run.exited, 15_000, `sandbox ${args.join(' ')} to exit`)).toBe(code);
  const lines = run.stderr().trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(line);
}

describe('ssm-bridge sandbox: bad input', () => {
  it('a port that is not a number', () => failsWith(['--port', 'abc'], 2, /^ssm-bridge: --port must be a port number from 0 to 65535 \(got "abc"\)$/));

  it('a seed that is not an integer', () => failsWith(['--seed', '1.5'], 2, /^ssm-bridge: --seed must be an integer \(got "1\.5"\)$/));

  it('a port in use', async () => {
    const first = runCli(['sandbox', '--port', '0']);
    try {
      const [, port] = (await waitForStderr(first, /listening on http:\/\/127\.0\.0\.1:(\d+)/)) as unknown as [string, string];
      await failsWith(['--port', port], 5, new RegExp(`^ssm-bridge: 127\\.0\\.0\\.1:${port} is already in use; choose another --port`));
    } finally {
      await stopCli(first);
    }
  });
});

describe('ssm-bridge sandbox: banner and credentials', () => {
  it('prints the key pair it verifies signatures against, and that pair works', async () => {
    const run = runCli(['sandbox', '--port', '0']);
    try {
      const [, id, secret, region] = (await waitForStderr(run, /export AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_REGION=(\S+)/)) as unknown as string[];
      expect({ accessKeyId: id, secretAccessKey: secret }).toEqual(SANDBOX_CREDENTIALS);
      const endpoint = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(run.stderr())![1]!;
      const ssm = new SSMClient({ endpoint, region: region!, credentials: { accessKeyId: id!, secretAccessKey: secret! }, maxAttempts: 1 });
      try {
        const out = await ssm.send(new StartSessionCommand({ Target: 'i-0123456789abcdef0', DocumentName: 'AWS-StartPortForwardingSession' }));
        expect(out.SessionId).toMatch(/^sandbox-/);
      } finally {
        ssm.destroy();
      }
    } finally {
      await stopCli(run);
    }
  });

  it('a config whose credentials are malformed: one line naming the key, without the secret', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-credentials-'));
    try {
      const path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify({ targets: {}, credentials: [{ accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'my-other-secret' }] }));
      await failsWith(['--config', path], 2, /^ssm-bridge: sandbox config: credentials\[0\]\.accessKeyId AKIDSANDBOX is the sandbox's own key .*; choose another id$/);
      writeFileSync(path, JSON.stringify({ targets: {}, credentials: [{ accessKeyId: 'AKID1', secretAccessKey: 'with space' }] }));
      await failsWith(['--config', path], 2, /^ssm-bridge: sandbox config: credentials\[0\]\.secretAccessKey must be a string of 1 to 128 characters without spaces$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

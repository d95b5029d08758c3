import { describe, expect, it } from 'vitest';
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

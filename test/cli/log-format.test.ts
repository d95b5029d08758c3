import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PAGE, DEMO_TARGET } from '../../src/sandbox/demo-services.js';
import { runCli, sandboxEnv, stopCli, waitForStderr, type CliRun } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
const runs: CliRun[] = [];

beforeAll(async () => {
  env = await startTestSandbox();
});
afterAll(async () => {
  for (const run of runs) await stopCli(run);
  await env?.close();
});

function cli(args: string[]): CliRun {
  const run = runCli(args, { env: sandboxEnv() });
  runs.push(run);
  return run;
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
  });
}

async function control(path: string): Promise<void> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/${path}`, { method: 'POST' });
  expect(res.status).toBeLessThan(300);
}

/** Every stderr line, each of which must be a JSON record. */
function records(run: CliRun): Array<Record<string, unknown>> {
  return run
    .stderr()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`a stderr line is not JSON: ${line}\nall of stderr:\n${run.stderr()}`);
      }
    });
}

const forwardArgs = (...more: string[]) => ['forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', env.sandbox.endpoint, ...more];

describe('--log-format json', () => {
  it('writes only JSON records on stderr: start, resume, stats and the final error', async () => {
    // --no-reconnect: the session's end is the final error this test reads (default: a replacement).
    const run = cli(forwardArgs('--log-format', 'json', '--stats-interval', '200ms', '--no-reconnect'));
    const listening = await waitForStderr(run, /"event":"listening".*"localPort":(\d+)/);
    expect(await get(Number(listening[1]))).toBe(DEMO_PAGE);
    const sessionId = /"sessionId":"([^"]+)"/.exec(run.stderr())![1]!;

    await control(`sessions/${sessionId}/drop`);
    await waitForStderr(run, /"event":"resumed"/);
    expect(await get(Number(listening[1]))).toBe(DEMO_PAGE);
    await waitForStderr(run, /"event":"stats".*"resumes":1/, 5_000);

    // The service ends the session: the run fails (exit 6) with its error as the last record.
    await control(`sessions/${sessionId}/terminate`);
    const code = await Promise.race([run.exited, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
    expect(code).toBe(6);

    const all = records(run);
    for (const r of all) expect(r).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
    const events = all.map((r) => r.event);
    expect(events.filter((e) => e === 'listening')).toHaveLength(1); // one announcement per listener
    expect(events).toEqual(expect.arrayContaining(['listening', 'disconnected', 'resumed', 'stats', 'error']));
    expect(all.find((r) => r.event === 'listening')).toMatchObject({ sessionId, localAddress: '127.0.0.1', localPort: Number(listening[1]), remote: `${DEMO_TARGET}:80` });
    expect(all.at(-1)).toMatchObject({ level: 50, event: 'error', code: 'SESSION_TERMINATED', exitCode: 6 });
    expect(JSON.stringify(all)).not.toMatch(/TokenValue|tokenValue|X-Amz-|\?[^"]*=/); // no token, no stream URL query
  });

  it('an argument error, before any logger exists, is a JSON record too', async () => {
    const run = cli(forwardArgs('--log-format=json', '--local-port', '70000'));
    expect(await run.exited).toBe(2);
    expect(records(run)).toEqual([expect.objectContaining({ level: 50, event: 'error', code: 'INVALID_ARGUMENT', exitCode: 2, msg: expect.stringContaining('--local-port') })]);
  });
});

describe('log levels and the pretty format', () => {
  it('pretty: one bare `Listening on` line per listener, no record beside it', async () => {
    const run = cli(forwardArgs('--', process.execPath, '-e', ''));
    expect(await run.exited).toBe(0);
    const lines = run.stderr().split('\n').filter(Boolean);
    expect(lines.filter((l) => l.includes('Listening on'))).toEqual([expect.stringMatching(/^Listening on 127\.0\.0\.1:\d+ -> i-0123456789abcdef0:80$/)]);
    expect(lines.filter((l) => /\blistening\b/.test(l))).toEqual([]);
  });

  it('--log-level warn keeps the announcement; silent drops everything but the final error', async () => {
    const warn = cli(forwardArgs('--log-level', 'warn', '--', process.execPath, '-e', ''));
    expect(await warn.exited).toBe(0);
    expect(warn.stderr()).toMatch(/^Listening on /m);

    const silent = cli(forwardArgs('--log-level', 'silent', '--stats-interval', '100ms', '--', process.execPath, '-e', 'setTimeout(() => {}, 300)'));
    expect(await silent.exited).toBe(0);
    expect(silent.stderr()).toBe('');

    const failing = cli(['forward', 'i-0000000000000nope', '--remote-port', '80', '--endpoint-url', env.sandbox.endpoint, '--log-level', 'silent']);
    expect(await failing.exited).toBe(3);
    expect(failing.stderr().trim().split('\n')).toEqual([expect.stringMatching(/^ssm-bridge: target i-0000000000000nope is not connected/)]);
  });
});

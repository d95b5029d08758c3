import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startForward, stopCli } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';
import { newSessionSince, sandboxSession, sessionIds } from '../helpers/resume-tools.js';

/*
 * A gateway that accepts the data channel and then drops it (or goes silent) every time: a resume counts only
 * once the service proved alive on the new connection, so the loop keeps its backoff and --resume-timeout
 * bounds the whole outage (issue 15: the client used to call ResumeSession ~575 times a second, for ever).
 */

const TARGET = 'i-0storm00000000001';
let env: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;

beforeAll(async () => {
  echo = await echoServer();
  env = await startTestSandbox({ [TARGET]: { ports: { '7': `127.0.0.1:${echo.port}` } } });
});

afterAll(async () => {
  await env?.close();
  await echo?.close();
});

async function outage(faults: Record<string, unknown>): Promise<{ code: number; elapsedMs: number; resumeCalls: number; resumedLines: number }> {
  const before = await sessionIds(env.sandbox.endpoint);
  // --no-reconnect: the resume outage alone (a replacement would follow it by default).
  const { run } = await startForward([TARGET, '--remote-port', '7', '--endpoint-url', env.sandbox.endpoint, '--resume-timeout', '5s', '--no-reconnect']);
  try {
    const { sessionId } = await newSessionSince(env.sandbox.endpoint, before);
    await env.sandbox.faults.update(faults);
    const started = Date.now();
    env.sandbox.gateway.drop(sessionId);
    const code = await within(run.exited, 20_000, 'forward to give up');
    const resumeCalls = (await sandboxSession(env.sandbox.endpoint, sessionId)).counters.resumeSessionCalls;
    return { code, elapsedMs: Date.now() - started, resumeCalls, resumedLines: run.stderr().split('\n').filter((l) => /resumed/i.test(l)).length };
  } finally {
    env.sandbox.faults.reset();
    await stopCli(run);
  }
}

describe('resume against a gateway that never lets a connection live', () => {
  it('every new connection is cut 50 ms after it opens: the outage keeps its backoff and budget, exit 7 after --resume-timeout 5s', async () => {
    const r = await outage({ closeEveryMs: 50 });
    console.log(`[storm] cut 50 ms after each open: exit ${r.code} after ${r.elapsedMs} ms, ${r.resumeCalls} ResumeSession calls`);
    expect(r.code).toBe(7);
    expect(r.elapsedMs).toBeLessThan(12_000);
    // With backoff from 100 ms doubling to 5 s, a 5 s outage holds a handful of attempts, never hundreds.
    expect(r.resumeCalls).toBeLessThan(20);
  }, 30_000);

  it('every new connection goes silent (no frames, no pongs): no "resumed", exit 7 within the bound', async () => {
    const r = await outage({ blackhole: true });
    console.log(`[storm] silent gateway: exit ${r.code} after ${r.elapsedMs} ms, ${r.resumeCalls} ResumeSession calls`);
    expect(r.code).toBe(7);
    expect(r.elapsedMs).toBeLessThan(15_000);
    expect(r.resumedLines).toBe(0);
  }, 30_000);
});

/**
 * Transparent resume against the agent as it runs on AWS: paced (one 1 KiB message per ms per session). The cut
 * and loss cases of resume.test.ts that are skipped there run here: unpaced, a cut loses hundreds of frames in
 * flight, which the real agent resends one per 100 ms (physics, not a client bug); paced, as on AWS, a cut loses
 * a handful, and the client must carry every byte through every cut, both ways, and exit 0.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { jsonRecords, newSessionSince, proxyExchange, sandboxSession, sessionIds } from '../helpers/resume-tools.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { exchange, exchangeServer, within, type TestServer } from '../helpers/servers.js';

const TARGET = 'i-0rpaced0000000001';
const KiB = 1024;
const MiB = 1024 * KiB;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let exchangeSrv: TestServer;
const runs: CliRun[] = [];

beforeAll(async () => {
  exchangeSrv = await exchangeServer();
  env = await startTestSandbox({ [TARGET]: { ports: { '9000': `127.0.0.1:${exchangeSrv.port}` } } }, { paced: true });
});

afterEach(async (context) => {
  if (context.task.result?.state === 'fail') {
    for (const r of runs) console.log(`[resume-paced] CLI stderr (exit ${r.child.exitCode}):\n${r.stderr().trim().split('\n').slice(-25).join('\n')}`);
  }
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
  env.sandbox.faults.reset();
});

afterAll(async () => {
  await env?.close();
  await exchangeSrv?.close();
});

async function forward(): Promise<{ port: number; run: CliRun; sessionId: string }> {
  const before = await sessionIds(env.sandbox.endpoint);
  const { port, run } = await startForward([TARGET, '--remote-port', '9000', '--endpoint-url', env.sandbox.endpoint, '--log-format', 'json', '--no-reconnect']);
  runs.push(run);
  const { sessionId } = await newSessionSince(env.sandbox.endpoint, before);
  return { port, run, sessionId };
}

function events(run: CliRun, event: string): number {
  return jsonRecords(run.stderr()).filter((r) => r.event === event).length;
}

/** Each drop reads disconnected, resuming (one per attempt), resumed — and nothing is left half-way. */
function expectResumeSequence(run: CliRun): void {
  const letters = jsonRecords(run.stderr())
    .map((r) => ({ disconnected: 'D', resuming: 'R', resumed: 'S' })[r.event as string] ?? '')
    .join('');
  expect(letters).toMatch(/^(DR+S)*$/);
}

async function settledReconnects(run: CliRun, sessionId: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const view = await sandboxSession(env.sandbox.endpoint, sessionId);
    if (view.state === 'connected' && events(run, 'resumed') === view.counters.reconnects) return view.counters.reconnects;
    if (Date.now() > deadline) throw new Error(`reconnects ${view.counters.reconnects}, resumed ${events(run, 'resumed')}, state ${view.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('resume, paced like the agent on AWS', () => {
  // Each cut still loses the agent's frames in flight, and the agent resends them one per 100 ms: a cut every
  // 512 KiB (two a second) took 60 s+ for 4 × 1 MiB. A cut per MiB of frames is already far above any network.
  it('forward: 4 connections × 512 KiB each way while the WebSocket is cut every 1 MiB: intact, every cut resumed', async () => {
    const { port, run, sessionId } = await forward();
    await env.sandbox.faults.update({ closeAfterBytes: MiB });
    const results = await within(Promise.all(Array.from({ length: 4 }, () => exchange(port, 512 * KiB))), 60_000, '4 × 512 KiB under cuts');
    for (const r of results) expect(r).toEqual({ upOk: true, downOk: true, received: 512 * KiB });
    await env.sandbox.faults.update({ closeAfterBytes: null });
    expect(await settledReconnects(run, sessionId)).toBeGreaterThanOrEqual(2);
    expectResumeSequence(run);
    expect(run.child.exitCode).toBeNull();
  }, 90_000);

  // Every lost agent message waits for the agent's one resend per 100 ms tick: 2 % over 4 × 512 KiB took 36 s.
  it('forward: 1 % loss, duplication and reordering on top of the cuts: 4 × 256 KiB each way intact', async () => {
    const { port, run, sessionId } = await forward();
    await env.sandbox.faults.update({ closeAfterBytes: MiB, dropRate: 0.01, duplicateRate: 0.01, reorderRate: 0.01, seed: 7 });
    const results = await within(Promise.all(Array.from({ length: 4 }, () => exchange(port, 256 * KiB))), 60_000, '4 × 256 KiB under cuts and loss');
    for (const r of results) expect(r).toEqual({ upOk: true, downOk: true, received: 256 * KiB });
    await env.sandbox.faults.update({ closeAfterBytes: null, dropRate: 0, duplicateRate: 0, reorderRate: 0 });
    const view = await sandboxSession(env.sandbox.endpoint, sessionId);
    expect(view.counters.dropped + view.counters.duplicated + view.counters.reordered).toBeGreaterThan(0);
    expect(view.counters.reconnects).toBeGreaterThan(0);
    expectResumeSequence(run);
  }, 90_000);

  it('forward: a new WebSocket every 300 ms: 4 × 256 KiB each way intact', async () => {
    const { port, run } = await forward();
    await env.sandbox.faults.update({ closeEveryMs: 300 });
    const results = await within(Promise.all(Array.from({ length: 4 }, () => exchange(port, 256 * KiB))), 60_000, '4 × 256 KiB, cut every 300 ms');
    for (const r of results) expect(r).toEqual({ upOk: true, downOk: true, received: 256 * KiB });
    expect(events(run, 'resumed')).toBeGreaterThan(2);
  }, 90_000);

  it('proxy: 1 MiB each way over stdin/stdout while the WebSocket is cut every 512 KiB: every byte once, exit 0', async () => {
    const before = await sessionIds(env.sandbox.endpoint);
    await env.sandbox.faults.update({ closeAfterBytes: 512 * KiB });
    const r = await proxyExchange({
      args: [TARGET, '--port', '9000', '--endpoint-url', env.sandbox.endpoint, '--log-format', 'json', '--log-level', 'info'],
      bytes: MiB,
      timeoutMs: 60_000,
      onRun: (run) => runs.push(run),
    });
    expect({ upOk: r.upOk, downOk: r.downOk, received: r.received, extraBytes: r.extraBytes, exitCode: r.exitCode }).toEqual({ upOk: true, downOk: true, received: MiB, extraBytes: 0, exitCode: 0 });
    const c = (await newSessionSince(env.sandbox.endpoint, before)).counters;
    expect(c.reconnects).toBeGreaterThanOrEqual(3);
    // The agent gave the destination exactly what went into stdin (the 8-byte header + the payload), once.
    expect(c.payloadBytesFromClient).toBe(MiB + 8);
  }, 90_000);

  it('keeps going when ResumeSession fails 5 times (500, then ThrottlingException) during a 1 MiB transfer', async () => {
    const { port, run, sessionId } = await forward();
    const transfer = exchange(port, MiB);
    await new Promise((r) => setTimeout(r, 300));
    env.sandbox.faults.update({ failResumeCount: 5, failResumeWith: 'InternalServerError' });
    env.sandbox.gateway.drop(sessionId);
    expect(await within(transfer, 60_000, '1 MiB across the failed resumes')).toEqual({ upOk: true, downOk: true, received: MiB });
    expect(env.sandbox.faults.settings.failResumeCount).toBe(0);
    expect((await sandboxSession(env.sandbox.endpoint, sessionId)).counters.resumeSessionCalls).toBeGreaterThanOrEqual(6);
    expect(events(run, 'resumed')).toBe(1);
    expectResumeSequence(run);
  }, 90_000);
});

import net from 'node:net';
import fc from 'fast-check';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, exitCodeFor } from '../../src/cli/exit-codes.js';
import { PortForwarder } from '../../src/endpoints/index.js';
import { BridgeError } from '../../src/errors.js';
import { encodeHandshakeComplete, encodeHandshakeRequest, MessageType, PayloadType } from '../../src/protocol/index.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { createSsmApi, type SsmApi } from '../../src/session/index.js';
import { encodeFrame, SmuxCommand } from '../../src/smux/frame.js';
import { streamFrame } from '../helpers/agent-frames.js';
import { startHostileService, type HostileService } from '../helpers/hostile-service.js';

/*
 * Property: whatever the service sends, at whatever stage (before the handshake, during it, while forwarding,
 * across a resume), the client as the library runs it (PortForwarder: a local listener, BridgeSession with its
 * handshake and resume loop, smux; the real SSM client against the hostile service on 127.0.0.1) never throws
 * an uncaught exception, ends with no error or a BridgeError whose exit code is a documented one (never 1),
 * holds bounded memory and settles in bounded time. 2,000 sequences, in-process (one CLI per sequence would
 * take an hour).
 */

type Stage = 'before-handshake' | 'during-handshake' | 'forwarding' | 'resuming';

let service: HostileService;
let api: SsmApi;
/** The script of each running sequence, by session id, for each of its data-channel connections. */
const scripts = new Map<string, (ws: WebSocket) => void>();
let nextSequence = 0;

beforeAll(async () => {
  service = await startHostileService({ onConnection: (peer) => scripts.get(peer.sessionId)?.(peer.ws), sessionIdFor: (target) => `s-${target}` });
  api = await createSsmApi({ endpointUrl: service.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
});

afterAll(async () => {
  api?.destroy();
  await service?.close();
});

function agentMessage(seq: number, payloadType: number, payload: Buffer): Buffer {
  return streamFrame(MessageType.OutputStreamData, seq, payloadType, payload);
}

const HANDSHAKE_REQUEST = agentMessage(0, PayloadType.HandshakeRequest, encodeHandshakeRequest({ AgentVersion: '3.3.2746.0', RequestedClientActions: [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'Port', Properties: { portNumber: '80', type: 'LocalPortForwarding' } } }] }));
const HANDSHAKE_COMPLETE = agentMessage(1, PayloadType.HandshakeComplete, encodeHandshakeComplete({ HandshakeTimeToComplete: 1, CustomerMessage: '' }));
const SMUX_DATA = agentMessage(2, PayloadType.Output, encodeFrame({ cmd: SmuxCommand.Psh, streamId: 3, data: Buffer.from('hello') }));

/** A frame: random bytes, a mutated valid message, or a valid message with a hostile payload (bad JSON, smux garbage, odd types). */
const frameArb = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.constantFrom(HANDSHAKE_REQUEST, HANDSHAKE_COMPLETE, SMUX_DATA), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 })).map(([base, flips]) => {
    const f = Buffer.from(base);
    for (const [at, x] of flips) f[at % f.length]! ^= x;
    return f;
  }),
  fc
    .tuple(
      fc.integer({ min: 0, max: 40 }),
      fc.constantFrom(...Object.values(PayloadType)),
      fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), fc.constant(Buffer.from('{"AgentVersion":')), fc.constant(Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]))),
    )
    .map(([seq, type, payload]) => agentMessage(seq, type, payload)),
);

const stageArb = fc.constantFrom<Stage>('before-handshake', 'during-handshake', 'forwarding', 'resuming');

const SEQUENCES = Number(process.env.SSM_BRIDGE_PROPERTY_SEQUENCES ?? 2_000);
const SESSIONS_AT_ONCE = 4;

const DOCUMENTED_EXIT_CODES = new Set<number>(Object.values(ExitCode).filter((c) => c !== ExitCode.OK && c !== ExitCode.INTERNAL));

/** The exit code the CLI would give for how a sequence ended: 0 for a clean end, else the error's code. */
function exitFor(err: unknown): number {
  if (err === undefined) return ExitCode.OK;
  return err instanceof BridgeError ? exitCodeFor(err.code) : ExitCode.INTERNAL;
}

/** One sequence: the service sends the stage's valid prefix, then `frames`, then drops the connection. */
async function runSequence(stage: Stage, frames: Buffer[]): Promise<number> {
  const prefix = stage === 'before-handshake' ? [] : stage === 'during-handshake' ? [HANDSHAKE_REQUEST] : [HANDSHAKE_REQUEST, HANDSHAKE_COMPLETE, SMUX_DATA];
  const target = `i-${(nextSequence++).toString(16).padStart(17, '0')}`;
  let connections = 0;
  scripts.set(`s-${target}`, (ws) => {
    const index = connections++;
    // A resumed connection (no new handshake) gets the frames again when resuming, and stays quiet otherwise.
    if (index > 0 && stage !== 'resuming') return;
    for (const f of index === 0 ? prefix : []) ws.send(f);
    for (const f of frames) ws.send(f);
    if (stage === 'resuming') setTimeout(() => ws.terminate(), 5);
    else if (index === 0) setTimeout(() => ws.close(), 5);
  });
  try {
    return await runClient(target);
  } finally {
    scripts.delete(`s-${target}`);
  }
}

async function runClient(target: string): Promise<number> {
  let forwarder: PortForwarder;
  try {
    forwarder = await PortForwarder.start({
      api,
      target,
      remotePort: 80,
      local: { kind: 'tcp', address: '127.0.0.1', port: 0 },
      session: { handshakeTimeoutMs: 300, resumeTimeoutMs: 500, pingIntervalMs: 100, silenceTimeoutMs: 300 },
    });
  } catch (err) {
    return exitFor(err);
  }
  // A local app that writes and reads through the tunnel while the service misbehaves.
  const endpoint = forwarder.endpoint;
  const client = net.connect(endpoint.kind === 'tcp' ? { host: '127.0.0.1', port: endpoint.port } : { path: endpoint.path });
  client.on('error', () => {});
  client.resume();
  client.write('ping');
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([forwarder.closed().then((err) => ({ err })), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 20)))]);
  clearTimeout(timer);
  if (ended === undefined) await forwarder.close();
  client.destroy();
  return exitFor(ended?.err);
}

describe('the client against random and mutated frames at every stage (property)', () => {
  it('never throws, ends with a documented exit code, holds bounded memory, settles in bounded time: 2,000 sequences', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    const heapBefore = process.memoryUsage().heapUsed;
    const exits = new Map<number, number>();
    let slowest = 0;
    let sequences = 0;
    try {
      await fc.assert(
        // Each run: SESSIONS_AT_ONCE sequences side by side (as `up` runs sessions), each its own session.
        fc.asyncProperty(fc.array(fc.tuple(stageArb, fc.array(frameArb, { maxLength: 12 })), { minLength: SESSIONS_AT_ONCE, maxLength: SESSIONS_AT_ONCE }), async (batch) => {
          const codes = await Promise.all(
            batch.map(async ([stage, frames]) => {
              const started = Date.now();
              const code = await runSequence(stage, frames);
              slowest = Math.max(slowest, Date.now() - started);
              return code;
            }),
          );
          sequences += batch.length;
          for (const code of codes) exits.set(code, (exits.get(code) ?? 0) + 1);
          expect(uncaught).toEqual([]);
          for (const code of codes) expect(code === ExitCode.OK || DOCUMENTED_EXIT_CODES.has(code), `exit ${code}`).toBe(true);
        }),
        { seed: 20261203, numRuns: Math.ceil(SEQUENCES / SESSIONS_AT_ONCE) },
      );
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
    console.log(`[property] ${sequences} sequences, exit codes ${JSON.stringify(Object.fromEntries(exits))}; slowest sequence ${slowest} ms`);
    expect(uncaught).toEqual([]);
    expect(sequences).toBeGreaterThanOrEqual(SEQUENCES);
    expect(slowest).toBeLessThan(3_000);
    // Nothing the peer sent is still held: the heap is back near where it started.
    if (global.gc) global.gc();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  }, 180_000);
});

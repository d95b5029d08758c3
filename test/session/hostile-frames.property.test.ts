import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReliableChannel, WebSocketTransport } from '../../src/channel/index.js';
import { encodeHandshakeComplete, encodeHandshakeRequest, MessageType, PayloadType } from '../../src/protocol/index.js';
import { streamFrame } from '../helpers/agent-frames.js';
import { performClientHandshake } from '../../src/session/handshake.js';
import { encodeFrame, SmuxCommand } from '../../src/smux/frame.js';
import { SmuxSession } from '../../src/smux/index.js';

/*
 * Property: whatever the service sends, at whatever stage (before the handshake, during it, while forwarding,
 * across a reconnect), the client's layers (reliable channel, handshake, smux) never throw an uncaught
 * exception, hold bounded memory, and settle in bounded time. Real WebSockets on 127.0.0.1; 2,000 sequences.
 */

type Stage = 'before-handshake' | 'during-handshake' | 'forwarding' | 'resuming';

let server: WebSocketServer;
let url = '';
/** The script for the next connection the server accepts. */
let script: ((ws: WebSocket) => void) | undefined;

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => server.once('listening', r));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.once('message', () => script?.(ws)); // after OpenDataChannelInput
  });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
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

function connect(): Promise<WebSocketTransport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      const transport = new WebSocketTransport(ws);
      transport.sendText('{"MessageSchemaVersion":"1.0","RequestId":"r","TokenValue":"t","ClientId":"c","ClientVersion":"1.2.694.0"}');
      resolve(transport);
    });
    ws.once('error', reject);
  });
}

/** One sequence: the service sends the stage's valid prefix, then `frames`; the client runs until it settles. */
async function runSequence(stage: Stage, frames: Buffer[]): Promise<void> {
  const prefix = stage === 'before-handshake' ? [] : stage === 'during-handshake' ? [HANDSHAKE_REQUEST] : [HANDSHAKE_REQUEST, HANDSHAKE_COMPLETE, SMUX_DATA];
  script = (ws) => {
    for (const f of prefix) ws.send(f);
    for (const f of frames) ws.send(f);
    if (stage === 'resuming') setTimeout(() => ws.terminate(), 5);
    else setTimeout(() => ws.close(), 5);
  };
  const channel = new ReliableChannel({ role: 'client' });
  channel.data.on('error', () => {});
  const handshake = performClientHandshake(channel, { timeoutMs: 300 });
  handshake.catch(() => {});
  let smux: SmuxSession | undefined;
  void handshake.then(
    () => {
      if (channel.isClosed) return;
      smux = new SmuxSession(channel.data, { role: 'client', keepAlive: false, allowPeerStreams: false });
      smux.on('error', () => {});
      const stream = smux.openStream();
      stream.on('error', () => {});
      stream.resume();
      stream.write('ping');
    },
    () => {},
  );
  const transport = await connect();
  channel.attach(transport);
  await new Promise<void>((resolve) => {
    const done = setTimeout(resolve, 60);
    transport.once('close', () => {
      clearTimeout(done);
      resolve();
    });
  });
  if (stage === 'resuming' && !channel.isClosed) {
    // The frames again on a new connection, as after ResumeSession: the channel keeps its state.
    const again = await connect();
    channel.attach(again);
    await new Promise((r) => setTimeout(r, 10));
    again.terminate();
  }
  smux?.close();
  channel.close();
  transport.terminate();
}

describe('the client against random and mutated frames at every stage (property)', () => {
  it('never throws, holds bounded memory, settles in bounded time: 2,000 sequences', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    const heapBefore = process.memoryUsage().heapUsed;
    let slowest = 0;
    try {
      await fc.assert(
        fc.asyncProperty(stageArb, fc.array(frameArb, { maxLength: 12 }), async (stage, frames) => {
          const started = Date.now();
          await runSequence(stage, frames);
          slowest = Math.max(slowest, Date.now() - started);
          expect(uncaught).toEqual([]);
        }),
        { seed: 20261203, numRuns: 2_000 },
      );
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
    expect(uncaught).toEqual([]);
    expect(slowest).toBeLessThan(2_000);
    // Nothing the peer sent is still held: the heap is back near where it started.
    if (global.gc) global.gc();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  }, 180_000);
});

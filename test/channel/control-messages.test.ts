import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type WebSocket from 'ws';
import { ReliableChannel, WebSocketTransport, type ReliableChannelOptions } from '../../src/channel/index.js';
import { BridgeError, ErrorCode, ProtocolError } from '../../src/errors.js';
import {
  decodeAcknowledge,
  decodeAgentMessage,
  encodeAcknowledge,
  encodeAgentMessage,
  encodeChannelClosed,
  MessageFlags,
  MessageType,
  PayloadType,
  SCHEMA_VERSION,
  type AgentMessage,
  type ChannelClosed,
} from '../../src/protocol/index.js';
import { waitFor } from '../helpers/channel-pair.js';
import { within } from '../helpers/servers.js';
import { Cleanup, connectPair, startAgentServer } from '../helpers/ws-pair.js';

/*
 * A client-role channel against a raw `ws` server that plays the service/agent by hand: it crafts
 * control messages and garbage, and records every frame the client sends.
 */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface RawPeer {
  channel: ReliableChannel;
  /** Server-side socket: what the "service" writes with. */
  peer: WebSocket;
  /** Every binary frame the client sent, decoded. */
  received: AgentMessage[];
  streamData(): AgentMessage[];
  acks(): AgentMessage[];
  send(frame: Buffer): void;
}

async function rawPeer(options: Omit<ReliableChannelOptions, 'role'> = {}): Promise<RawPeer> {
  const server = await startAgentServer();
  cleanup.add(() => server.close());
  const { client, agent: peer } = await connectPair(server);
  const channel = new ReliableChannel({ role: 'client', ...options });
  channel.data.on('error', () => {});
  const transport = new WebSocketTransport(client);
  channel.attach(transport);
  cleanup.add(() => {
    channel.close();
    transport.terminate();
  });
  const received: AgentMessage[] = [];
  peer.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) received.push(decodeAgentMessage(data));
  });
  return {
    channel,
    peer,
    received,
    streamData: () => received.filter((m) => m.messageType === MessageType.InputStreamData),
    acks: () => received.filter((m) => m.messageType === MessageType.Acknowledge),
    send: (frame) => peer.send(frame, { binary: true }),
  };
}

function message(messageType: MessageType, overrides: Partial<AgentMessage> = {}): Buffer {
  return encodeAgentMessage({
    messageType,
    schemaVersion: SCHEMA_VERSION,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: messageType === MessageType.OutputStreamData ? MessageFlags.Data : MessageFlags.Ack,
    messageId: randomUUID(),
    payloadType: PayloadType.Undefined,
    payload: Buffer.alloc(0),
    ...overrides,
  });
}

function output(sequenceNumber: number, payload: Buffer): Buffer {
  return message(MessageType.OutputStreamData, { sequenceNumber, payloadType: PayloadType.Output, payload });
}

function ackFor(msg: AgentMessage): Buffer {
  return message(MessageType.Acknowledge, {
    payload: encodeAcknowledge({
      AcknowledgedMessageType: msg.messageType,
      AcknowledgedMessageId: msg.messageId,
      AcknowledgedMessageSequenceNumber: msg.sequenceNumber,
      IsSequentialMessage: true,
    }),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('start_publication / pause_publication', () => {
  it('stops sending stream data (resends included) while paused, and resumes on start_publication', async () => {
    const p = await rawPeer();
    const publication: string[] = [];
    p.channel.on('publication', (state: string) => publication.push(state));

    // Two messages go out and stay unacknowledged: they become overdue while paused.
    p.channel.data.write(randomBytes(2048));
    await waitFor(() => p.streamData().length === 2, 2000, 'two messages before the pause');

    p.send(message(MessageType.PausePublication));
    await waitFor(() => publication.length === 1, 2000, 'the pause');
    expect(publication).toEqual(['paused']);
    p.channel.data.write(randomBytes(8 * 1024));
    // (On a slow machine the RTO may have resent the two before the pause landed: count from here.)
    const framesAtPause = p.streamData().length;
    const resendsAtPause = p.channel.stats.resends;

    // Paused well past the RTO: no new message, no resend; and no timer spinning on the overdue ones.
    const timeouts = vi.spyOn(globalThis, 'setTimeout');
    await sleep(600);
    const timersWhilePaused = timeouts.mock.calls.length;
    timeouts.mockRestore();
    expect(p.streamData()).toHaveLength(framesAtPause);
    expect(p.channel.stats.resends).toBe(resendsAtPause);
    expect(timersWhilePaused).toBeLessThan(20);

    p.send(message(MessageType.StartPublication));
    await waitFor(() => p.streamData().length >= framesAtPause + 10, 2000, 'the queued messages after start_publication');
    expect(publication).toEqual(['paused', 'started']);
    const sequences = new Set(p.streamData().map((m) => m.sequenceNumber));
    expect([...sequences].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The two overdue ones were resent after the pause ended.
    expect(p.channel.stats.resends).toBeGreaterThanOrEqual(resendsAtPause + 2);

    for (const m of p.streamData()) p.send(ackFor(m));
    await waitFor(() => p.channel.bufferedMessages === 0, 2000, 'every message acknowledged');
  });

  it('still acknowledges incoming stream data while its own publication is paused', async () => {
    const p = await rawPeer();
    p.send(message(MessageType.PausePublication));
    const got: Buffer[] = [];
    p.channel.data.on('data', (c: Buffer) => got.push(c));
    p.send(output(0, Buffer.from('hello')));
    await waitFor(() => p.acks().length === 1, 2000, 'the ack');
    expect(Buffer.concat(got).toString()).toBe('hello');
    expect(decodeAcknowledge(p.acks()[0]!.payload).AcknowledgedMessageSequenceNumber).toBe(0);
  });
});

describe('channel_closed', () => {
  it("is emitted as 'channel-closed' with the decoded payload", async () => {
    const p = await rawPeer();
    const closed: ChannelClosed = {
      MessageId: randomUUID(),
      CreatedDate: '2024-05-01T10:00:00.000Z',
      DestinationId: 'i-0123456789abcdef0',
      SessionId: 'user-0a1b2c3d4e5f',
      MessageType: 'channel_closed',
      SchemaVersion: 1,
      Output: 'Session terminated by the administrator',
    };
    const event = new Promise<ChannelClosed>((resolve) => p.channel.once('channel-closed', resolve));
    p.send(message(MessageType.ChannelClosed, { payloadType: PayloadType.Output, payload: encodeChannelClosed(closed) }));
    expect(await within(event, 2000, 'channel-closed')).toEqual(closed);
    // It is not a stream message: nothing to acknowledge, nothing delivered.
    await sleep(30);
    expect(p.acks()).toHaveLength(0);
  });
});

describe('garbage from the peer', () => {
  /** Send one frame and wait for the resulting 'malformed' event. */
  async function expectMalformed(p: RawPeer, frame: Buffer, field?: string): Promise<ProtocolError> {
    const event = new Promise<ProtocolError>((resolve) => p.channel.once('malformed', resolve));
    p.send(frame);
    const err = await within(event, 2000, `a malformed event for ${field ?? 'the frame'}`);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe(ErrorCode.PROTOCOL_ERROR);
    if (field !== undefined) expect(err.field).toBe(field);
    return err;
  }

  it('drops malformed frames unacknowledged, keeps working, and reports each one', async () => {
    const p = await rawPeer();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    cleanup.add(() => process.off('uncaughtException', onUncaught));
    const delivered: Buffer[] = [];
    p.channel.data.on('data', (c: Buffer) => delivered.push(c));

    const valid = output(0, Buffer.from('payload bytes'));
    const corruptPayload = Buffer.from(valid);
    corruptPayload[corruptPayload.length - 1]! ^= 0x01;
    const corruptDigest = Buffer.from(valid);
    corruptDigest[80]! ^= 0x80;
    const badHeaderLength = Buffer.from(valid);
    badHeaderLength.writeUInt32BE(117, 0);
    const badPayloadLength = Buffer.from(valid);
    badPayloadLength.writeUInt32BE(valid.length - 120 + 1, 116);
    const unknownType = Buffer.from(valid);
    unknownType.write('not_a_message_type'.padEnd(32, ' '), 4, 'latin1');

    await expectMalformed(p, Buffer.alloc(0), 'message');
    await expectMalformed(p, randomBytes(119), 'message');
    await expectMalformed(p, corruptPayload, 'payloadDigest');
    await expectMalformed(p, corruptDigest, 'payloadDigest');
    await expectMalformed(p, badHeaderLength, 'headerLength');
    await expectMalformed(p, badPayloadLength, 'payloadLength');
    // Unknown types are ignored, as the agent and the official client do: counted and reported once, not malformed.
    const reported: string[] = [];
    p.channel.on('unknown-type', (name: string) => reported.push(name));
    p.send(unknownType);
    p.send(unknownType);
    // Well-formed, but wrong for this side: input_stream_data is what the client sends, not receives.
    p.send(message(MessageType.InputStreamData, { payloadType: PayloadType.Output, payload: Buffer.from('x') }));
    await waitFor(() => p.channel.stats.unknownTypesReceived === 3, 2000, 'three ignored messages');
    expect(reported).toEqual(['not_a_message_type']);
    // An acknowledge whose JSON is broken.
    await expectMalformed(p, message(MessageType.Acknowledge, { payload: Buffer.from('{"AcknowledgedMessageSequenceNumber":') }), 'Acknowledge');
    // A channel_closed whose payload is not JSON.
    await expectMalformed(p, message(MessageType.ChannelClosed, { payload: Buffer.from('nope') }), 'ChannelClosed');

    expect(p.channel.stats.malformedReceived).toBe(8);
    expect(p.acks()).toHaveLength(0);
    expect(delivered).toHaveLength(0);

    // A text frame is not garbage: it is reported as text.
    const text = new Promise<string>((resolve) => p.channel.once('text', resolve));
    p.peer.send('{"hello":"text"}');
    expect(await within(text, 2000, 'the text event')).toBe('{"hello":"text"}');

    // The channel is still alive: the valid message is delivered and acknowledged.
    p.send(valid);
    await waitFor(() => p.acks().length === 1, 2000, 'the ack of the valid message');
    expect(Buffer.concat(delivered).toString()).toBe('payload bytes');
    expect(p.channel.isClosed).toBe(false);
    expect(uncaught).toEqual([]);
  });

  it('treats random and mutated frames as malformed, never as data, never throwing (property)', async () => {
    const p = await rawPeer({ maxMalformed: 1_000_000 });
    const delivered: Buffer[] = [];
    p.channel.data.on('data', (c: Buffer) => delivered.push(c));
    let malformed = 0;
    p.channel.on('malformed', () => malformed++);
    const valid = output(0, randomBytes(300));
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
          // Flip bytes where a flip can never leave a valid message: header length, digest, payload length, payload.
          fc
            .array(fc.tuple(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 80, max: 111 }), fc.integer({ min: 116, max: valid.length - 1 })), fc.integer({ min: 1, max: 255 })), {
              minLength: 1,
              maxLength: 4,
            })
            .map((flips) => {
              const f = Buffer.from(valid);
              for (const [at, x] of flips) f[at]! ^= x;
              return f;
            }),
        ),
        async (frame) => {
          p.send(frame);
          sent++;
          await waitFor(() => malformed === sent, 2000, 'the malformed event', 1);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
    expect(delivered).toHaveLength(0);
    expect(p.acks()).toHaveLength(0);
    expect(p.channel.isClosed).toBe(false);
  });

  it('bounds the reorder buffer in bytes: far-future messages of 1 MiB each are not all kept', async () => {
    const p = await rawPeer({ maxReorderBytes: 4 * 1024 * 1024 });
    // Message 0 never comes; 1..40 carry 1 MiB each (payloads above the 1 KiB the agent sends, which a hostile peer may do).
    for (let seq = 1; seq <= 40; seq++) p.send(output(seq, Buffer.alloc(1024 * 1024, seq)));
    await waitFor(() => p.channel.stats.outOfOrderReceived + p.channel.stats.droppedReorderFull === 40, 10_000, '40 early messages handled');
    expect(p.channel.stats.outOfOrderReceived).toBe(4);
    expect(p.channel.stats.droppedReorderFull).toBe(36);
    // Only the kept ones were acknowledged: the rest come again by resend.
    expect(p.acks()).toHaveLength(4);
  });

  it('garbage spread wider than the window is tolerated', async () => {
    const p = await rawPeer({ maxMalformed: 16, malformedWindowMs: 200 });
    let malformed = 0;
    p.channel.on('malformed', () => malformed++);
    for (let i = 0; i < 12; i++) p.send(randomBytes(200));
    await waitFor(() => malformed === 12, 2000, '12 malformed frames');
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 12; i++) p.send(randomBytes(200));
    await waitFor(() => malformed === 24, 2000, '24 malformed frames');
    expect(p.channel.isClosed).toBe(false);
  });

  it('closes the channel with PROTOCOL_ERROR after too much garbage within the window, good messages in between or not', async () => {
    const p = await rawPeer({ maxMalformed: 16 });
    const closed = new Promise<BridgeError | undefined>((resolve) => p.channel.once('close', resolve));
    const dataError = new Promise<Error>((resolve) => p.channel.data.once('error', resolve));
    let malformed = 0;
    p.channel.on('malformed', () => malformed++);
    // A valid message in between does not reset the count (a window, not a run): 15 + valid + 1 is fatal.
    for (let i = 0; i < 15; i++) p.send(randomBytes(200));
    p.send(output(0, Buffer.from('ok')));
    await waitFor(() => malformed === 15, 2000, '15 malformed frames');
    expect(p.channel.isClosed).toBe(false);
    p.send(randomBytes(200));
    const err = await within(closed, 2000, 'the channel to close');
    expect(err).toBeInstanceOf(BridgeError);
    expect(err?.code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(err?.cause).toBeInstanceOf(ProtocolError);
    expect(await within(dataError, 2000, 'data to fail')).toBe(err);
    expect(p.channel.isClosed).toBe(true);
    expect(p.channel.isAttached).toBe(false);
    expect(() => p.channel.sendStreamMessage(PayloadType.Output, Buffer.from('late'))).toThrow(BridgeError);
    // The peer got exactly one ack: for the single valid message.
    await waitFor(() => p.acks().length >= 1, 2000, 'the ack of the valid message');
    await sleep(30);
    expect(p.acks()).toHaveLength(1);
  });
});

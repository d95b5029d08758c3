import { afterEach, describe, expect, it } from 'vitest';
import { decodeAcknowledge, decodeAgentMessage, MessageType, type AgentMessage } from '../../src/protocol/index.js';
import { readHashed, writeRandom } from '../helpers/byte-streams.js';
import { startChannelPair, waitFor, type ChannelPair } from '../helpers/channel-pair.js';
import type { FrameAction } from '../helpers/fault-relay.js';
import { within } from '../helpers/servers.js';
import { Cleanup } from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function pair(options: Parameters<typeof startChannelPair>[0] = {}): Promise<ChannelPair> {
  const p = await startChannelPair(options);
  cleanup.add(() => p.close());
  return p;
}

/** Decode a relayed frame, or undefined when it is not a valid agent message. */
function peek(frame: Buffer): AgentMessage | undefined {
  try {
    return decodeAgentMessage(frame);
  } catch {
    return undefined;
  }
}

/** Send `bytes` each way at once through `data` and compare SHA-256 of what went in and came out. */
async function transferBothWays(p: ChannelPair, bytes: number, timeoutMs: number): Promise<void> {
  const up = writeRandom(p.client.data, bytes);
  const down = writeRandom(p.agent.data, bytes);
  const upIn = readHashed(p.agent.data, bytes);
  const downIn = readHashed(p.client.data, bytes);
  const [upSent, downSent, upGot, downGot] = await within(Promise.all([up.done, down.done, upIn.done, downIn.done]), timeoutMs, `${bytes} bytes each way`);
  expect(upGot).toBe(upSent);
  expect(downGot).toBe(downSent);
}

describe('ReliableChannel over a real WebSocket', () => {
  it('carries 16 MiB each way at once, intact and in order', async () => {
    const p = await pair();
    await transferBothWays(p, 16 * MiB, 20_000);
    // Nothing left in flight, nothing lost on a clean path.
    await waitFor(() => p.client.bufferedMessages === 0 && p.agent.bufferedMessages === 0, 2000, 'every message acknowledged');
    expect(p.client.stats.payloadBytesReceived).toBe(16 * MiB);
    expect(p.agent.stats.payloadBytesReceived).toBe(16 * MiB);
    expect(p.relay.counters.toUpstream.dropped + p.relay.counters.toClient.dropped).toBe(0);
  });

  it('carries 16 MiB each way intact through drops, duplicates and reordering (both directions, acks included)', async () => {
    const faults = { dropRate: 0.03, duplicateRate: 0.03, reorderRate: 0.03 };
    const p = await pair({ relay: { seed: 7, toUpstream: faults, toClient: faults } });
    await transferBothWays(p, 16 * MiB, 30_000);
    await waitFor(() => p.client.bufferedMessages === 0 && p.agent.bufferedMessages === 0, 5000, 'every message acknowledged');
    const { toUpstream, toClient } = p.relay.counters;
    expect(toUpstream.dropped).toBeGreaterThan(100);
    expect(toUpstream.duplicated).toBeGreaterThan(100);
    expect(toUpstream.reordered).toBeGreaterThan(100);
    expect(toClient.dropped).toBeGreaterThan(100);
    // Lost messages were resent; duplicates and early arrivals were seen and absorbed.
    expect(p.client.stats.resends).toBeGreaterThan(0);
    expect(p.agent.stats.resends).toBeGreaterThan(0);
    expect(p.agent.stats.duplicatesReceived).toBeGreaterThan(0);
    expect(p.agent.stats.outOfOrderReceived).toBeGreaterThan(0);
    expect(p.client.stats.duplicatesReceived).toBeGreaterThan(0);
    // Exactly the bytes sent, once each.
    expect(p.agent.stats.payloadBytesReceived).toBe(16 * MiB);
    expect(p.client.stats.payloadBytesReceived).toBe(16 * MiB);
  });

  it('resends a lost message as soon as three later ones are acknowledged (evidence of loss), well before its RTO', async () => {
    const p = await pair();
    let droppedAtMs = 0;
    p.relay.filter = (frame, direction): FrameAction | undefined => {
      const msg = direction === 'toUpstream' && droppedAtMs === 0 ? peek(frame) : undefined;
      if (msg?.messageType === MessageType.InputStreamData && msg.sequenceNumber === 5) {
        droppedAtMs = Date.now();
        return 'drop';
      }
      return undefined;
    };
    const got = readHashed(p.agent.data, 10 * 1024);
    const sent = writeRandom(p.client.data, 10 * 1024, 10 * 1024);
    expect(await within(got.done, 3000, 'the lost message')).toBe(await sent.done);
    expect(Date.now() - droppedAtMs).toBeLessThan(p.client.stats.rtoMs);
    expect(p.client.stats.fastResends).toBe(1);
    expect(p.client.stats.timeoutResends).toBe(0);
    await waitFor(() => p.client.bufferedMessages === 0, 2000, 'the resent message to be acknowledged');
  });

  it('resends a lost message with no later one acknowledged (the last of a burst) after about one RTO', async () => {
    const p = await pair();
    let droppedAtMs = 0;
    let rtoAtDropMs = 0;
    p.relay.filter = (frame, direction): FrameAction | undefined => {
      const msg = direction === 'toUpstream' && droppedAtMs === 0 ? peek(frame) : undefined;
      if (msg?.messageType === MessageType.InputStreamData && msg.sequenceNumber === 9) {
        droppedAtMs = Date.now();
        rtoAtDropMs = p.client.stats.rtoMs;
        return 'drop';
      }
      return undefined;
    };
    const got = readHashed(p.agent.data, 10 * 1024);
    const sent = writeRandom(p.client.data, 10 * 1024, 10 * 1024);
    expect(await within(got.done, 3000, 'the lost message')).toBe(await sent.done);
    const delayMs = Date.now() - droppedAtMs;
    expect(rtoAtDropMs).toBeGreaterThan(0);
    expect(delayMs).toBeGreaterThanOrEqual(rtoAtDropMs * 0.8);
    // The resend tick (100 ms) may add up to one tick.
    expect(delayMs).toBeLessThan(rtoAtDropMs + 600);
    expect(p.client.stats.timeoutResends).toBe(1);
    await waitFor(() => p.client.bufferedMessages === 0, 2000, 'the resent message to be acknowledged');
  });

  it('keeps the window within maxInFlightMessages sequence numbers behind a hole, so the peer reorder buffer never overflows', async () => {
    // The agent can hold 100 early messages; the client may have 64 in flight. Counting only unacked
    // messages let the client run far past a lost one (here: to the end of the transfer) and overflow it.
    const p = await pair({ client: { maxInFlightMessages: 64 }, agent: { maxReorderMessages: 100 } });
    let holeSeen = 0;
    let maxSeqBeforeResend = -1;
    p.relay.filter = (frame, direction): FrameAction | undefined => {
      const msg = direction === 'toUpstream' ? peek(frame) : undefined;
      if (msg?.messageType !== MessageType.InputStreamData) return undefined;
      // The first transmission and the quick resend on evidence of loss are both lost: the window must hold
      // behind the hole until the timeout resend gets through.
      if (msg.sequenceNumber === 10) {
        holeSeen++;
        return holeSeen <= 2 ? 'drop' : undefined;
      }
      if (holeSeen >= 1 && holeSeen <= 2) maxSeqBeforeResend = Math.max(maxSeqBeforeResend, msg.sequenceNumber);
      return undefined;
    };
    const got = readHashed(p.agent.data, 512 * 1024);
    const sent = writeRandom(p.client.data, 512 * 1024);
    expect(await within(got.done, 5000, 'delivery')).toBe(await sent.done);
    expect(holeSeen).toBeGreaterThanOrEqual(3);
    expect(maxSeqBeforeResend).toBe(10 + 64 - 1);
    // Every early message was buffered and acknowledged; none was dropped for lack of room.
    expect(p.agent.stats.outOfOrderReceived).toBe(63);
    expect(p.client.stats.resends).toBeGreaterThanOrEqual(1);
  });

  it('acknowledges a duplicate again (the sender lost the first ack) and delivers it once', async () => {
    const p = await pair();
    let droppedAck = false;
    p.relay.filter = (frame, direction): FrameAction | undefined => {
      if (direction !== 'toClient' || droppedAck) return undefined;
      const msg = peek(frame);
      if (msg?.messageType === MessageType.Acknowledge && decodeAcknowledge(msg.payload).AcknowledgedMessageSequenceNumber === 3) {
        droppedAck = true;
        return 'drop';
      }
      return undefined;
    };
    const got = readHashed(p.agent.data, 8 * 1024);
    const sent = writeRandom(p.client.data, 8 * 1024, 8 * 1024);
    expect(await within(got.done, 2000, 'delivery')).toBe(await sent.done);
    // Message 3 stays in flight until the resend is acknowledged again; the official client stalls here.
    await waitFor(() => p.client.bufferedMessages === 0, 3000, "the duplicate's second ack to empty the sender's window");
    expect(droppedAck).toBe(true);
    expect(p.client.stats.resends).toBeGreaterThanOrEqual(1);
    expect(p.agent.stats.duplicatesReceived).toBeGreaterThanOrEqual(1);
    expect(p.agent.stats.acksSent).toBe(8 + p.agent.stats.duplicatesReceived);
    await new Promise((r) => setTimeout(r, 50));
    expect(got.received).toBe(8 * 1024);
  });

  it('absorbs every frame arriving twice: each acknowledged twice, delivered once', async () => {
    const p = await pair({ relay: { toUpstream: { duplicateRate: 1 } } });
    const got = readHashed(p.agent.data, 64 * 1024);
    const sent = writeRandom(p.client.data, 64 * 1024);
    expect(await within(got.done, 2000, 'delivery')).toBe(await sent.done);
    await waitFor(() => p.agent.stats.duplicatesReceived === 64, 2000, 'all duplicates');
    expect(p.agent.stats.acksSent).toBe(128);
    await waitFor(() => p.client.bufferedMessages === 0, 2000, 'the acks at the client');
    await new Promise((r) => setTimeout(r, 50));
    expect(got.received).toBe(64 * 1024);
    expect(p.agent.stats.messagesReceived).toBe(64);
  });
});

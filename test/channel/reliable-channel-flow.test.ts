import { afterEach, describe, expect, it } from 'vitest';
import { PayloadType, type AgentMessage } from '../../src/protocol/index.js';
import { readHashed, writeRandom } from '../helpers/byte-streams.js';
import { startChannelPair, waitFor, type ChannelPair } from '../helpers/channel-pair.js';
import { within } from '../helpers/servers.js';
import { Cleanup } from '../helpers/ws-pair.js';

/* Flow control and transport swaps (apart from reliable-channel.test.ts so the two heavy files run in parallel). */

const MiB = 1024 * 1024;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function pair(options: Parameters<typeof startChannelPair>[0] = {}): Promise<ChannelPair> {
  const p = await startChannelPair(options);
  cleanup.add(() => p.close());
  return p;
}

/** Resolves once the writer has made no progress for 300 ms. */
async function stalled(writer: { written: number }): Promise<void> {
  let last = -1;
  await waitFor(
    () => {
      const still = writer.written === last;
      last = writer.written;
      return still;
    },
    10_000,
    'the writer to stall',
    300,
  );
}

describe('ReliableChannel flow control and transport swap', () => {
  it('makes the writer wait while the window is full, within maxBufferedMessages and bounded memory', async () => {
    const maxBufferedMessages = 256;
    const p = await pair({ client: { maxInFlightMessages: 128, maxBufferedMessages } });
    const total = 64 * MiB;
    const memory = (): number => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = memory();
    let maxBuffered = 0;
    let maxGrowth = 0;
    const sampler = setInterval(() => {
      maxBuffered = Math.max(maxBuffered, p.client.bufferedMessages);
      maxGrowth = Math.max(maxGrowth, memory() - baseline);
    }, 2);
    cleanup.add(() => clearInterval(sampler));
    // The agent side never reads (no 'data' listener: `data` stays paused) until we say so.
    p.agent.data.pause();
    const writer = writeRandom(p.client.data, total);
    await stalled(writer);
    const stalledAt = writer.written;
    expect(stalledAt).toBeLessThan(total / 2);
    expect(writer.stalls).toBeGreaterThan(0);
    expect(p.client.bufferedMessages).toBe(maxBufferedMessages);
    expect(maxGrowth).toBeLessThan(64 * MiB);
    // Now consume: everything arrives, intact.
    const reader = readHashed(p.agent.data, total);
    const [sentHash, gotHash] = await within(Promise.all([writer.done, reader.done]), 20_000, '64 MiB after the stall');
    clearInterval(sampler);
    expect(gotHash).toBe(sentHash);
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedMessages);
    expect(maxGrowth).toBeLessThan(64 * MiB);
  });

  it('an echo through a reader that stalls for a while does not deadlock against a peer without a window', async () => {
    // The real agent sends without a window (SPEC §5): here a peer whose window is larger than the whole transfer.
    // The agent echoes what it gets. The client's reader stalls, so the client's `data` fills past its budget and
    // the client stops reading its transport: the agent's acks for the client's data wait unread, the client's
    // window fills, the upload stops. Then the client reads again: everything moves, nothing was dropped.
    const p = await pair({ client: { maxInFlightMessages: 2048, maxBufferedMessages: 2048 }, agent: { maxInFlightMessages: 20_000, maxBufferedMessages: 20_000 } });
    const bytes = 16 * MiB;
    p.agent.data.pipe(p.agent.data);
    p.client.data.pause();
    const up = writeRandom(p.client.data, bytes);
    await stalled(up);
    // Under load the writer can look stalled a moment before the client's budget is full: wait for the pause.
    await waitFor(() => p.client.stats.receivePauses > 0, 10_000, 'the client to stop reading its transport');
    const echoed = readHashed(p.client.data, bytes);
    const [sent, got] = await within(Promise.all([up.done, echoed.done]), 30_000, '16 MiB echoed back');
    expect(got).toBe(sent);
  });

  it('whenAcknowledged: true once the peer has acknowledged every byte written; false while it holds them back', async () => {
    // The agent takes 1 MiB into `data` for a reader that is away, then stops reading its transport.
    const p = await pair({ agent: { receiveBudgetBytes: 1 * MiB } });
    const bytes = 3 * MiB;
    p.agent.data.pause();
    const up = writeRandom(p.client.data, bytes);
    await stalled(up);
    expect(await p.client.whenAcknowledged(300)).toBe(false);
    const got = readHashed(p.agent.data, bytes);
    expect(await p.client.whenAcknowledged(10_000)).toBe(true);
    expect(p.client.bufferedMessages).toBe(0);
    expect(await within(got.done, 5_000, 'the agent to read it all')).toBe(await up.done);
  });

  it('stops reading its transport past receiveBudgetBytes for a stopped reader, drops nothing, and reads again below the low-water mark', async () => {
    const budget = 2 * MiB;
    const p = await pair({ agent: { maxInFlightMessages: 20_000, maxBufferedMessages: 20_000 }, client: { receiveBudgetBytes: budget } });
    const bytes = 8 * MiB;
    p.client.data.pause();
    const down = writeRandom(p.agent.data, bytes);
    await waitFor(() => p.client.stats.receivePauses > 0, 10_000, 'the receiver to stop reading');
    await new Promise((r) => setTimeout(r, 300));
    // Held: the budget plus at most what one socket read delivered after it.
    expect(p.client.data.readableLength).toBeLessThanOrEqual(budget + 1 * MiB);
    const resendsBefore = p.agent.stats.resends;
    const got = readHashed(p.client.data, bytes);
    const [sent, received] = await within(Promise.all([down.done, got.done]), 30_000, '8 MiB after the reader returns');
    expect(received).toBe(sent);
    // Nothing had to come again: every message that arrived was kept and acknowledged.
    expect(p.client.stats.droppedReorderFull).toBe(0);
    expect(p.agent.stats.resends - resendsBefore).toBeLessThan(64);
  });

  it('survives a transport swap mid-transfer: every byte once, and a message sent while detached arrives', async () => {
    const p = await pair();
    const bytes = 16 * MiB;
    const up = writeRandom(p.client.data, bytes);
    const down = writeRandom(p.agent.data, bytes);
    const upIn = readHashed(p.agent.data, bytes);
    const downIn = readHashed(p.client.data, bytes);
    const controlMessages: AgentMessage[] = [];
    p.agent.on('stream-message', (msg: AgentMessage) => controlMessages.push(msg));

    await waitFor(() => upIn.received >= 4 * MiB && downIn.received >= 4 * MiB, 10_000, '4 MiB each way before the cut');
    const detached = p.bothDetached();
    p.relay.terminateAll();
    await detached;
    expect(p.client.isAttached).toBe(false);
    expect(p.agent.isAttached).toBe(false);

    // The reference client loses a send made while the socket is down; ours keeps it for the next transport.
    const payload = Buffer.from('{"sent":"while detached"}');
    const seq = p.client.sendStreamMessage(PayloadType.HandshakeResponse, payload);
    await new Promise((r) => setTimeout(r, 20));

    await p.reconnect();
    const [upSent, downSent, upGot, downGot] = await within(Promise.all([up.done, down.done, upIn.done, downIn.done]), 20_000, 'the rest after the swap');
    expect(upGot).toBe(upSent);
    expect(downGot).toBe(downSent);
    await waitFor(() => controlMessages.length === 1 && p.client.bufferedMessages === 0 && p.agent.bufferedMessages === 0, 2000, 'the control message');
    expect(controlMessages[0]!.sequenceNumber).toBe(seq);
    expect(controlMessages[0]!.payloadType).toBe(PayloadType.HandshakeResponse);
    expect(controlMessages[0]!.payload.equals(payload)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(upIn.received).toBe(bytes);
    expect(downIn.received).toBe(bytes);
    expect(controlMessages).toHaveLength(1);
    expect(p.relay.counters.connections).toBe(2);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { waitFor } from '../helpers/channel-pair.js';
import { FaultRelay, seededRandom, type FaultRelayOptions } from '../helpers/fault-relay.js';
import { within } from '../helpers/servers.js';
import { Cleanup, openClient, startAgentServer, type AgentServer } from '../helpers/ws-pair.js';

/* The test helper itself: faults must be what the channel tests think they are. */

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Relayed {
  server: AgentServer;
  relay: FaultRelay;
  client: WebSocket;
  upstream: WebSocket;
  /** Frames the upstream side received, as [text|binary, content]. */
  atUpstream: [boolean, Buffer][];
  atClient: [boolean, Buffer][];
  upstreamPath: string;
}

async function relayed(options: Omit<FaultRelayOptions, 'upstreamUrl'> = {}, path = '/v1/data-channel/s-1?role=publish_subscribe'): Promise<Relayed> {
  const server = await startAgentServer();
  cleanup.add(() => server.close());
  let upstreamPath = '';
  server.wss.once('connection', (_ws, req) => (upstreamPath = req.url ?? ''));
  const relay = await FaultRelay.start({ upstreamUrl: server.url, ...options });
  cleanup.add(() => relay.close());
  const upstreamSide = server.nextConnection();
  const client = await openClient(relay.url + path);
  const upstream = await upstreamSide;
  const r: Relayed = { server, relay, client, upstream, atUpstream: [], atClient: [], upstreamPath: '' };
  upstream.on('message', (data: Buffer, isBinary: boolean) => r.atUpstream.push([isBinary, data]));
  client.on('message', (data: Buffer, isBinary: boolean) => r.atClient.push([isBinary, data]));
  r.upstreamPath = upstreamPath;
  return r;
}

const frame = (i: number): Buffer => Buffer.from([i & 0xff, i >> 8]);
const indexOf = (b: Buffer): number => b[0]! | (b[1]! << 8);

describe('FaultRelay', () => {
  it('forwards both ways, keeping text and binary apart and the path and query', async () => {
    const r = await relayed();
    expect(r.upstreamPath).toBe('/v1/data-channel/s-1?role=publish_subscribe');
    r.client.send('{"TokenValue":"t"}');
    r.client.send(frame(1));
    r.upstream.send(frame(2));
    r.upstream.send('text down');
    await waitFor(() => r.atUpstream.length === 2 && r.atClient.length === 2, 2000, 'four frames');
    expect(r.atUpstream).toEqual([
      [false, Buffer.from('{"TokenValue":"t"}')],
      [true, frame(1)],
    ]);
    expect(r.atClient).toEqual([
      [true, frame(2)],
      [false, Buffer.from('text down')],
    ]);
    expect(r.relay.counters.toUpstream).toMatchObject({ frames: 1, textFrames: 1, bytes: 2 });
    expect(r.relay.counters.connections).toBe(1);
  });

  it('drops, duplicates and reorders binary frames only, per direction', async () => {
    const r = await relayed({ toUpstream: { dropRate: 1 }, toClient: { duplicateRate: 1 } });
    r.client.send('text survives');
    for (let i = 0; i < 10; i++) r.client.send(frame(i));
    for (let i = 0; i < 10; i++) r.upstream.send(frame(i));
    await waitFor(() => r.atClient.length === 20 && r.atUpstream.length === 1, 2000, 'the frames');
    await new Promise((res) => setTimeout(res, 30));
    expect(r.atUpstream).toEqual([[false, Buffer.from('text survives')]]);
    expect(r.atClient.map(([, b]) => indexOf(b))).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]);
    expect(r.relay.counters.toUpstream.dropped).toBe(10);
    expect(r.relay.counters.toClient.duplicated).toBe(10);
  });

  it('reorders by holding a frame until the next one, and releases a lone held frame after maxHoldMs', async () => {
    const r = await relayed({ toUpstream: { reorderRate: 1 }, maxHoldMs: 200 });
    for (let i = 0; i < 4; i++) r.client.send(frame(i));
    await waitFor(() => r.atUpstream.length === 4, 2000, 'four frames');
    expect(r.atUpstream.map(([, b]) => indexOf(b))).toEqual([1, 0, 3, 2]);
    r.client.send(frame(9));
    await waitFor(() => r.atUpstream.length === 5, 2000, 'the held frame');
    expect(r.relay.counters.toUpstream.reordered).toBe(3);
  });

  it('delays frames', async () => {
    const r = await relayed({ toUpstream: { delayRate: 1, delayMs: 100 } });
    const start = Date.now();
    r.client.send(frame(1));
    await waitFor(() => r.atUpstream.length === 1, 2000, 'the delayed frame');
    expect(Date.now() - start).toBeGreaterThanOrEqual(95);
  });

  it('is reproducible from its seed', () => {
    const a = seededRandom(5);
    const b = seededRandom(5);
    const c = seededRandom(6);
    const seqA = Array.from({ length: 20 }, a);
    expect(Array.from({ length: 20 }, b)).toEqual(seqA);
    expect(Array.from({ length: 20 }, c)).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('drops exactly the frames a filter picks', async () => {
    const r = await relayed();
    r.relay.filter = (f, direction) => (direction === 'toUpstream' && indexOf(f) % 2 === 0 ? 'drop' : undefined);
    for (let i = 0; i < 6; i++) r.client.send(frame(i));
    await waitFor(() => r.atUpstream.length === 3, 2000, 'three frames');
    expect(r.atUpstream.map(([, b]) => indexOf(b))).toEqual([1, 3, 5]);
  });

  it('closeAll sends close frames both ways; terminateAll cuts both legs', async () => {
    const r = await relayed();
    const codes = Promise.all([
      new Promise<number>((res) => r.client.once('close', (code: number) => res(code))),
      new Promise<number>((res) => r.upstream.once('close', (code: number) => res(code))),
    ]);
    r.relay.closeAll(4001, 'test');
    expect(await within(codes, 2000, 'both closes')).toEqual([4001, 4001]);

    const r2 = await relayed();
    const cut = Promise.all([
      new Promise<number>((res) => r2.client.once('close', (code: number) => res(code))),
      new Promise<number>((res) => r2.upstream.once('close', (code: number) => res(code))),
    ]);
    r2.relay.terminateAll();
    expect(await within(cut, 2000, 'both cuts')).toEqual([1006, 1006]);
    expect(r2.relay.connectionCount).toBe(0);
  });

  it('applies backpressure instead of buffering for a peer that does not read', async () => {
    const r = await relayed({ highWaterBytes: 64 * 1024 });
    r.upstream.pause();
    const chunk = Buffer.alloc(64 * 1024);
    let sent = 0;
    // Keep the client's own buffer small so we can see the relay push back.
    for (let i = 0; i < 400 && r.client.bufferedAmount < 1024 * 1024; i++) {
      r.client.send(chunk);
      sent += chunk.length;
      await new Promise((res) => setImmediate(res));
    }
    await new Promise((res) => setTimeout(res, 100));
    // The relay stopped reading the client: the data waits in the client and the kernel, not in the relay.
    expect(r.relay.counters.toUpstream.bytes).toBeLessThan(sent);
    r.upstream.resume();
    let got = 0;
    r.upstream.on('message', (d: Buffer) => (got += d.length));
    await waitFor(() => r.atUpstream.reduce((n, [, b]) => n + b.length, 0) === sent, 5000, 'everything after resume');
    expect(got).toBeGreaterThan(0);
  });
});

import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { WebSocketTransport } from '../../src/channel/index.js';
import { waitFor } from '../helpers/channel-pair.js';
import { FaultRelay } from '../helpers/fault-relay.js';
import { listenTcp, within } from '../helpers/servers.js';
import { Cleanup, connectPair, openClient, startAgentServer } from '../helpers/ws-pair.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function directPair(): Promise<{ client: WebSocket; agent: WebSocket }> {
  const server = await startAgentServer();
  cleanup.add(() => server.close());
  return connectPair(server);
}

function track(transport: WebSocketTransport): WebSocketTransport {
  cleanup.add(() => transport.terminate());
  return transport;
}

/** Resolves with [ms until 'silence', ms until 'close'] from now. */
function silenceAndClose(transport: WebSocketTransport, timeoutMs: number): Promise<[number, number]> {
  const start = Date.now();
  const silence = new Promise<number>((resolve) => transport.once('silence', () => resolve(Date.now() - start)));
  const closed = new Promise<number>((resolve) => transport.once('close', () => resolve(Date.now() - start)));
  return within(Promise.all([silence, closed]), timeoutMs, 'silence and close');
}

describe('WebSocketTransport silence detection', () => {
  const pingIntervalMs = 40;
  const silenceTimeoutMs = 200;

  it('declares silence and closes when the path stops carrying anything (a frozen relay)', async () => {
    const server = await startAgentServer();
    cleanup.add(() => server.close());
    const relay = await FaultRelay.start({ upstreamUrl: server.url });
    cleanup.add(() => relay.close());
    const { client } = await connectPair(server, relay.url);
    const transport = track(new WebSocketTransport(client, { pingIntervalMs, silenceTimeoutMs }));
    // Alive while the relay answers the pings.
    await sleep(silenceTimeoutMs * 2);
    expect(transport.isOpen).toBe(true);
    relay.freeze();
    const [silenceMs, closeMs] = await silenceAndClose(transport, 3000);
    expect(silenceMs).toBeGreaterThanOrEqual(silenceTimeoutMs - pingIntervalMs);
    // Detected on the first ping tick past the timeout (slack for a loaded machine's late timers).
    expect(silenceMs).toBeLessThanOrEqual(silenceTimeoutMs + pingIntervalMs + 300);
    expect(closeMs).toBeLessThanOrEqual(silenceTimeoutMs + pingIntervalMs + 500);
    expect(transport.isOpen).toBe(false);
  });

  it('declares silence against a server that accepted the upgrade and then went quiet', async () => {
    const tcp = await listenTcp((socket) => {
      socket.once('data', (head: Buffer) => {
        const key = /sec-websocket-key:\s*(\S+)/i.exec(head.toString('latin1'))?.[1] ?? '';
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        // From now on: read nothing, answer nothing.
        socket.pause();
      });
    });
    cleanup.add(() => tcp.close());
    const ws = await openClient(`ws://127.0.0.1:${tcp.port}/v1/data-channel/s`);
    const transport = track(new WebSocketTransport(ws, { pingIntervalMs, silenceTimeoutMs }));
    const [silenceMs, closeMs] = await silenceAndClose(transport, 3000);
    expect(silenceMs).toBeGreaterThanOrEqual(silenceTimeoutMs - pingIntervalMs);
    // Detected on the first ping tick past the timeout (slack for a loaded machine's late timers).
    expect(silenceMs).toBeLessThanOrEqual(silenceTimeoutMs + pingIntervalMs + 300);
    expect(closeMs).toBeLessThanOrEqual(silenceTimeoutMs + pingIntervalMs + 500);
  });

  it('stays open on an idle but answering connection (pongs count as life)', async () => {
    const { client } = await directPair();
    const transport = track(new WebSocketTransport(client, { pingIntervalMs, silenceTimeoutMs }));
    let silent = false;
    transport.on('silence', () => (silent = true));
    await sleep(silenceTimeoutMs * 3);
    expect(silent).toBe(false);
    expect(transport.isOpen).toBe(true);
  });

  it('is off by default', async () => {
    const { client, agent } = await directPair();
    const transport = track(new WebSocketTransport(client));
    let silent = false;
    transport.on('silence', () => (silent = true));
    agent.pause();
    await sleep(300);
    expect(silent).toBe(false);
    expect(transport.isOpen).toBe(true);
  });
});

describe('WebSocketTransport sending', () => {
  it('delivers a burst of frames in order and intact (corked writes), text and binary apart', async () => {
    const { client, agent } = await directPair();
    const transport = track(new WebSocketTransport(client));
    const got: { data: Buffer; isBinary: boolean }[] = [];
    agent.on('message', (data: Buffer, isBinary: boolean) => got.push({ data, isBinary }));
    transport.sendText('{"MessageSchemaVersion":"1.0"}');
    const frames: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const f = Buffer.alloc(200 + (i % 7), i & 0xff);
      f.writeUInt32BE(i, 0);
      frames.push(f);
      transport.sendBinary(f);
    }
    await waitFor(() => got.length === 3001, 5000, 'every frame');
    expect(got[0]).toEqual({ data: Buffer.from('{"MessageSchemaVersion":"1.0"}'), isBinary: false });
    for (let i = 0; i < 3000; i++) {
      expect(got[i + 1]!.isBinary).toBe(true);
      expect(got[i + 1]!.data.equals(frames[i]!)).toBe(true);
    }
  });

  it("returns false above its high-water mark and emits 'drain' once the socket has taken the data", async () => {
    const { client, agent } = await directPair();
    const transport = track(new WebSocketTransport(client, { highWaterBytes: 64 * 1024 }));
    let received = 0;
    agent.on('message', (data: Buffer) => (received += data.length));
    let accepted = 0;
    let sentBytes = 0;
    while (transport.sendBinary(Buffer.alloc(1024))) {
      accepted++;
      sentBytes += 1024;
    }
    sentBytes += 1024; // the frame that returned false is sent too
    expect(accepted).toBeLessThan(64);
    await within(new Promise((r) => transport.once('drain', r)), 2000, 'drain');
    await waitFor(() => received === sentBytes, 2000, 'all bytes at the peer');
  });

  it('reports a closed socket: sendBinary returns false and nothing throws', async () => {
    const { client } = await directPair();
    const transport = track(new WebSocketTransport(client));
    const closed = new Promise<[number, string]>((resolve) => transport.once('close', (code: number, reason: string) => resolve([code, reason])));
    transport.close(1000, 'bye');
    expect(await within(closed, 2000, 'close')).toEqual([1000, 'bye']);
    expect(transport.isOpen).toBe(false);
    expect(transport.sendBinary(Buffer.alloc(10))).toBe(false);
    expect(() => transport.sendText('x')).not.toThrow();
  });

  it("emits 'close' with 1006 when the peer vanishes", async () => {
    const { client, agent } = await directPair();
    const transport = track(new WebSocketTransport(client));
    const closed = new Promise<number>((resolve) => transport.once('close', (code: number) => resolve(code)));
    agent.terminate();
    expect(await within(closed, 2000, 'close')).toBe(1006);
  });
});

describe('raw TCP helper sanity', () => {
  it('listenTcp closes its connections', async () => {
    const tcp = await listenTcp(() => {});
    const socket = net.connect(tcp.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const closed = new Promise((r) => socket.once('close', r));
    socket.on('error', () => {});
    await tcp.close();
    await within(closed, 2000, 'the client socket to close');
  });
});

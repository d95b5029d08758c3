import type { EventEmitter } from 'node:events';
import { Duplex, type Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError, ProtocolError } from '../../src/errors.js';
import { FrameParser, SmuxCommand, SmuxSession, type SmuxFrame, type SmuxSessionOptions, type SmuxStream } from '../../src/smux/index.js';
import { readHashed, writeRandom } from '../helpers/byte-streams.js';
import { within } from '../helpers/servers.js';
import { createSocketPair, type SocketPair } from '../helpers/socket-pair.js';
import { RawPeer } from './raw-peer.js';

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Pair {
  pair: SocketPair;
  client: SmuxSession;
  server: SmuxSession;
  /** Session-level 'error' events seen, by side. */
  errors: { client: Error[]; server: Error[] };
}

type Overrides = Partial<Omit<SmuxSessionOptions, 'role'>>;

async function sessionPair(clientOptions: Overrides = {}, serverOptions: Overrides = {}): Promise<Pair> {
  const pair = await createSocketPair();
  cleanups.push(() => pair.close());
  const client = new SmuxSession(pair.client, { role: 'client', keepAlive: false, ...clientOptions });
  const server = new SmuxSession(pair.server, { role: 'server', keepAlive: false, ...serverOptions });
  const errors = { client: [] as Error[], server: [] as Error[] };
  client.on('error', (err: Error) => errors.client.push(err));
  server.on('error', (err: Error) => errors.server.push(err));
  cleanups.push(() => {
    client.close();
    server.close();
  });
  return { pair, client, server, errors };
}

async function rawPair(options: Overrides = {}): Promise<{ client: SmuxSession; raw: RawPeer; errors: Error[] }> {
  const pair = await createSocketPair();
  cleanups.push(() => pair.close());
  const client = new SmuxSession(pair.client, { role: 'client', keepAlive: false, ...options });
  const errors: Error[] = [];
  client.on('error', (err: Error) => errors.push(err));
  cleanups.push(() => client.close());
  return { client, raw: new RawPeer(pair.server), errors };
}

/** The next `event` with its arguments. Unlike events.once, an 'error' on the way does not reject it. */
function next<T extends unknown[]>(emitter: EventEmitter, event: string, ms = 2_000): Promise<T> {
  return within(new Promise<T>((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args as T))), ms, `'${event}' event`);
}

/** Everything a readable delivers up to its end. */
function readAll(stream: Readable, ms = 5_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return within(
    new Promise<Buffer>((resolve, reject) => {
      stream.once('end', () => resolve(Buffer.concat(chunks)));
      stream.once('error', reject);
    }),
    ms,
    'stream end',
  );
}

async function waitFor(condition: () => boolean, ms = 2_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A stream's 'error', recorded so that a test can assert it (and it never goes unhandled). */
function recordError(stream: SmuxStream): { error: Error | undefined } {
  const seen: { error: Error | undefined } = { error: undefined };
  stream.on('error', (err: Error) => (seen.error = err));
  return seen;
}

describe('SmuxSession over a real TCP connection', () => {
  it('numbers client streams 3, 5, 7 and server streams 2, 4; each side accepts the other', async () => {
    const { client, server } = await sessionPair();
    const acceptedByServer: number[] = [];
    const acceptedByClient: number[] = [];
    server.on('stream', (s: SmuxStream) => acceptedByServer.push(s.streamId));
    client.on('stream', (s: SmuxStream) => acceptedByClient.push(s.streamId));
    expect([client.openStream(), client.openStream(), client.openStream()].map((s) => s.streamId)).toEqual([3, 5, 7]);
    expect([server.openStream(), server.openStream()].map((s) => s.streamId)).toEqual([2, 4]);
    await waitFor(() => acceptedByServer.length === 3 && acceptedByClient.length === 2, 2_000, 'SYNs');
    expect(acceptedByServer).toEqual([3, 5, 7]);
    expect(acceptedByClient).toEqual([2, 4]);
    expect(client.stats.streamsOpened).toBe(3);
    expect(server.stats.streamsAccepted).toBe(3);
  });

  it('carries 16 concurrent streams of 4 MiB each way intact (SHA-256 both directions)', async () => {
    const { client, server, errors } = await sessionPair();
    const bytesPerStream = 4 * 1024 * 1024;
    const serverSide = new Map<number, Promise<[string, string]>>();
    server.on('stream', (s: SmuxStream) => {
      const read = readHashed(s, bytesPerStream);
      const written = writeRandom(s, bytesPerStream);
      serverSide.set(s.streamId, Promise.all([written.done, read.done]));
    });
    const clientSide = Array.from({ length: 16 }, () => {
      const s = client.openStream();
      const read = readHashed(s, bytesPerStream);
      const written = writeRandom(s, bytesPerStream);
      return { streamId: s.streamId, done: Promise.all([written.done, read.done]) };
    });
    const clientResults = await within(Promise.all(clientSide.map((c) => c.done)), 45_000, '16 × 4 MiB each way');
    expect(serverSide.size).toBe(16);
    for (const [i, c] of clientSide.entries()) {
      const [serverSent, serverReceived] = await within(serverSide.get(c.streamId)!, 5_000, 'server side of a stream');
      const [clientSent, clientReceived] = clientResults[i]!;
      expect(serverReceived, `stream ${c.streamId} client → server`).toBe(clientSent);
      expect(clientReceived, `stream ${c.streamId} server → client`).toBe(serverSent);
    }
    expect(client.stats.bytesOut).toBe(16 * bytesPerStream);
    expect(server.stats.bytesIn).toBe(16 * bytesPerStream);
    expect(client.stats.bytesIn).toBe(16 * bytesPerStream);
    expect(errors).toEqual({ client: [], server: [] });
  }, 60_000);

  it('opens and closes 200 short streams in a row and leaves nothing behind', async () => {
    const { client, server, errors } = await sessionPair();
    server.on('stream', (s: SmuxStream) => {
      let request = '';
      s.on('data', (chunk: Buffer) => {
        request += chunk.toString();
        // Reply, then FIN once the reply is in the session (what the agent does when the destination closes).
        if (request.endsWith('\n')) s.end(`pong ${request}`, () => s.destroy());
      });
    });
    for (let i = 0; i < 200; i++) {
      const s = client.openStream();
      s.write(`ping ${i}\n`);
      const reply = await readAll(s, 2_000);
      expect(reply.toString()).toBe(`pong ping ${i}\n`);
      const closed = next(s, 'close');
      s.end();
      await closed;
    }
    expect(client.streamCount).toBe(0);
    await waitFor(() => server.streamCount === 0, 2_000, 'server streams to close');
    expect(client.stats.streamsOpened).toBe(200);
    expect(server.stats.streamsAccepted).toBe(200);
    expect(errors).toEqual({ client: [], server: [] });
  });

  it('ends the reader on the peer FIN, after all the data buffered before it', async () => {
    const { client, server } = await sessionPair();
    const payload = Buffer.alloc(300_000, 7);
    server.on('stream', (s: SmuxStream) => s.end(payload, () => s.destroy()));
    const s = client.openStream();
    // Nobody reads yet: the data and the FIN wait in the stream.
    await waitFor(() => s.remoteEnded, 2_000, 'the server FIN');
    expect(client.receiveBufferedBytes).toBeGreaterThan(0);
    const got = await readAll(s);
    expect(got.equals(payload)).toBe(true);
    expect(client.receiveBufferedBytes).toBe(0);
  });

  it('close() FINs every stream, refuses new streams and leaves the carrier to its owner', async () => {
    const { pair, client, server } = await sessionPair();
    const serverReads: Promise<Buffer>[] = [];
    server.on('stream', (s: SmuxStream) => serverReads.push(readAll(s)));
    const streams = [client.openStream(), client.openStream()];
    streams[0]!.write('before close');
    await waitFor(() => serverReads.length === 2, 2_000, 'server to accept');
    const closed = next<[Error | undefined]>(client, 'close');
    const streamClosed = streams.map((s) => next(s, 'close'));
    client.close();
    expect(client.state).toBe('closed');
    expect((await closed)[0]).toBeUndefined();
    await Promise.all(streamClosed);
    expect((await serverReads[0]!).toString()).toBe('before close');
    expect((await serverReads[1]!).length).toBe(0);
    expect(() => client.openStream()).toThrow(BridgeError);
    expect(() => client.openStream()).toThrow(/closed/);
    expect(pair.client.destroyed).toBe(false);
    expect(server.state).toBe('open');
  });

  it('destroys open streams with CHANNEL_CLOSED when the carrier dies, but lets a finished stream deliver its data', async () => {
    const { pair, client, server } = await sessionPair();
    server.on('stream', (s: SmuxStream) => {
      s.on('error', () => {});
      s.once('data', (chunk: Buffer) => {
        if (chunk.toString() === 'finish me') s.end('all of it', () => s.destroy());
      });
    });
    const open = client.openStream();
    const openError = recordError(open);
    const finished = client.openStream();
    finished.write('finish me');
    await waitFor(() => finished.remoteEnded, 2_000, 'the FIN of the finished stream');
    const closed = next<[Error | undefined]>(client, 'close');
    pair.client.destroy();
    const [reason] = await closed;
    expect(reason).toBeInstanceOf(BridgeError);
    expect((reason as BridgeError).code).toBe('CHANNEL_CLOSED');
    await waitFor(() => open.destroyed, 2_000, 'the open stream to be destroyed');
    expect((openError.error as BridgeError | undefined)?.code).toBe('CHANNEL_CLOSED');
    expect((await readAll(finished)).toString()).toBe('all of it');
  });

  it('ends open streams after their data when the carrier ends cleanly (the service ended the session)', async () => {
    const { pair, client, server } = await sessionPair();
    const served = new Promise<void>((resolve) =>
      server.on('stream', (s: SmuxStream) => {
        s.on('error', () => {});
        s.write('sent before the end', () => resolve());
      }),
    );
    const open = client.openStream();
    const openError = recordError(open);
    open.write('hello');
    open.pause(); // the reader is slow: the data waits in the stream when the carrier ends
    await served;
    await waitFor(() => open.readableLength > 0 || open.queuedBytes > 0, 2_000, 'the data to arrive');
    const closed = next<[Error | undefined]>(client, 'close');
    pair.server.end();
    await closed;
    expect(open.destroyed).toBe(false);
    const received = readAll(open);
    open.resume();
    expect((await received).toString()).toBe('sent before the end');
    expect(openError.error).toBeUndefined();
    // The peer hears nothing more: later writes are discarded, not failed.
    open.end('too late');
    await waitFor(() => open.destroyed, 2_000, 'the stream to finish');
    expect(open.bytesDiscarded).toBe('too late'.length);
  });

  describe('keep-alive', () => {
    it('keeps an idle session alive while both sides send NOPs', async () => {
      const keepAlive = { intervalMs: 50, timeoutMs: 200 };
      const { client, server, errors } = await sessionPair({ keepAlive }, { keepAlive });
      await sleep(700);
      expect(client.state).toBe('open');
      expect(server.state).toBe('open');
      expect(client.stats.nopsSent).toBeGreaterThanOrEqual(5);
      expect(server.stats.framesIn).toBeGreaterThanOrEqual(5);
      expect(errors).toEqual({ client: [], server: [] });
      // And a stream still works afterwards.
      server.on('stream', (s: SmuxStream) => s.end('still here', () => s.destroy()));
      expect((await readAll(client.openStream())).toString()).toBe('still here');
    });

    it('dies with TIMEOUT when the peer is silent, and a disabled side sends no NOPs', async () => {
      const { client, server } = await sessionPair({ keepAlive: { intervalMs: 50, timeoutMs: 200 } }, { keepAlive: false });
      const events: string[] = [];
      server.on('stream', () => {}); // accept and hold it: a refused stream would get a FIN and survive the timeout
      const stream = client.openStream();
      const streamError = recordError(stream);
      client.on('error', () => events.push('error'));
      const started = Date.now();
      const [reason] = await next<[Error | undefined]>(client, 'close', 2_000);
      events.push('close');
      const elapsedMs = Date.now() - started;
      expect(events).toEqual(['error', 'close']);
      expect(reason).toBeInstanceOf(BridgeError);
      expect((reason as BridgeError).code).toBe('TIMEOUT');
      expect(elapsedMs).toBeGreaterThanOrEqual(190);
      expect(elapsedMs).toBeLessThan(1_000);
      await waitFor(() => stream.destroyed, 1_000, 'stream destroyed');
      expect(streamError.error).toBe(reason);
      expect(server.stats.nopsSent).toBe(0);
      expect(server.state).toBe('open');
    });

    it('rejects a timeout shorter than the interval', async () => {
      const pair = await createSocketPair();
      cleanups.push(() => pair.close());
      expect(() => new SmuxSession(pair.client, { role: 'client', keepAlive: { intervalMs: 100, timeoutMs: 50 } })).toThrow(/keep-alive/);
    });
  });

  it('pauses the carrier when a reader stops, keeps memory bounded, and delivers everything after it resumes', async () => {
    const budgetBytes = 256 * 1024;
    const totalBytes = 32 * 1024 * 1024;
    const { client, server } = await sessionPair({}, { maxReceiveBufferBytes: budgetBytes });
    let received: SmuxStream | undefined;
    server.on('stream', (s: SmuxStream) => (received = s)); // never read until later
    const sending = client.openStream();
    const progress = writeRandom(sending, totalBytes);
    await waitFor(() => server.stats.carrierPauses > 0, 10_000, 'the server to pause its carrier');
    // Wait until the writer has stalled: TCP buffers fill, the client carrier stops draining, the stream holds.
    let last = -1;
    let maxBuffered = 0;
    for (let i = 0; i < 40 && progress.written !== last; i++) {
      last = progress.written;
      for (let j = 0; j < 10; j++) {
        maxBuffered = Math.max(maxBuffered, server.receiveBufferedBytes);
        await sleep(20);
      }
    }
    expect(progress.written).toBe(last);
    expect(progress.written).toBeLessThan(totalBytes);
    expect(progress.stalls).toBeGreaterThan(0);
    // Bounded: the budget plus at most one carrier chunk (64 KiB TCP read) parsed after the budget ran out…
    expect(maxBuffered).toBeLessThanOrEqual(budgetBytes + 64 * 1024);
    expect(server.stats.peakReceiveBufferedBytes).toBeLessThanOrEqual(budgetBytes + 64 * 1024);
    // …plus what the paused readable itself holds: its high-water mark and one frame.
    expect(received!.readableLength).toBeLessThanOrEqual(received!.readableHighWaterMark + 32 * 1024);
    const reading = readHashed(received!, totalBytes);
    const [sentHash, receivedHash] = await within(Promise.all([progress.done, reading.done]), 20_000, 'the rest of the transfer');
    expect(receivedHash).toBe(sentHash);
    expect(server.receiveBufferedBytes).toBe(0);
  }, 40_000);
});

describe('smux frames on the wire (raw peer)', () => {
  it('sends no FIN on end(); FINs once after the peer FIN when the local side has finished', async () => {
    const { client, raw } = await rawPair();
    const s = client.openStream();
    s.write('hello');
    s.end();
    await next(s, 'finish');
    // Frames are written in order, so once a later SYN arrived any FIN for stream 3 would have too.
    client.openStream();
    await raw.waitForFrame((f) => f.cmd === SmuxCommand.Syn && f.streamId === 5, 2_000, 'SYN 5');
    expect(raw.framesFor(3)).toEqual(['SYN', 'PSH:hello']);
    expect(s.destroyed).toBe(false);

    const closed = next(s, 'close');
    raw.send(SmuxCommand.Psh, 3, 'reply');
    raw.send(SmuxCommand.Fin, 3);
    expect((await readAll(s)).toString()).toBe('reply');
    // Readable ended and writable finished: autoDestroy closes the stream, and only now does FIN go out.
    await closed;
    client.openStream();
    await raw.waitForFrame((f) => f.cmd === SmuxCommand.Syn && f.streamId === 7, 2_000, 'SYN 7');
    expect(raw.framesFor(3)).toEqual(['SYN', 'PSH:hello', 'FIN']);
  });

  it('after the peer FIN, discards local writes without an error and FINs on end()', async () => {
    const { client, raw } = await rawPair();
    const s = client.openStream();
    const error = recordError(s);
    raw.send(SmuxCommand.Fin, 3);
    await readAll(s);
    // The readable side ended, the writable side is open: no FIN yet.
    client.openStream();
    await raw.waitForFrame((f) => f.streamId === 5, 2_000, 'SYN 5');
    expect(raw.framesFor(3)).toEqual(['SYN']);
    await new Promise<void>((resolve, reject) => s.write('late', (err) => (err ? reject(err) : resolve())));
    expect(s.bytesDiscarded).toBe(4);
    s.end();
    await next(s, 'close');
    await raw.waitForFrame((f) => f.cmd === SmuxCommand.Fin && f.streamId === 3, 2_000, 'FIN 3');
    expect(raw.framesFor(3)).toEqual(['SYN', 'FIN']);
    expect(error.error).toBeUndefined();
  });

  it('sends exactly one FIN on destroy(), after the data', async () => {
    const { client, raw } = await rawPair();
    const s = client.openStream();
    s.write('x');
    s.destroy();
    s.destroy();
    await next(s, 'close');
    client.openStream();
    await raw.waitForFrame((f) => f.streamId === 5, 2_000, 'SYN 5');
    expect(raw.framesFor(3)).toEqual(['SYN', 'PSH:x', 'FIN']);
    expect(client.streamCount).toBe(1);
  });

  it('splits a large write into PSH frames of at most 32768 bytes', async () => {
    const { client, raw } = await rawPair();
    const s = client.openStream();
    s.write(Buffer.alloc(100_000, 1));
    await waitFor(() => raw.frames.filter((f) => f.cmd === SmuxCommand.Psh).reduce((n, f) => n + f.data.length, 0) === 100_000, 2_000, 'all data');
    expect(raw.frames.filter((f) => f.cmd === SmuxCommand.Psh).map((f) => f.data.length)).toEqual([32768, 32768, 32768, 1696]);
  });

  it('drops data for unknown streams, as xtaci/smux does, and goes on', async () => {
    const { client, raw, errors } = await rawPair();
    const accepted = next<[SmuxStream]>(client, 'stream');
    raw.send(SmuxCommand.Psh, 99, 'lost');
    raw.send(SmuxCommand.Syn, 2);
    raw.send(SmuxCommand.Syn, 2); // a duplicate SYN is ignored
    raw.send(SmuxCommand.Psh, 2, 'hi');
    raw.send(SmuxCommand.Fin, 2);
    const [s] = await accepted;
    expect(s.streamId).toBe(2);
    expect((await readAll(s)).toString()).toBe('hi');
    expect(client.stats.framesDropped).toBe(1);
    expect(client.stats.bytesDropped).toBe(4);
    expect(client.stats.streamsAccepted).toBe(1);
    expect(errors).toEqual([]);
  });

  it('refuses a peer stream with a FIN when nobody listens for streams', async () => {
    const { raw } = await rawPair();
    raw.send(SmuxCommand.Syn, 2);
    await raw.waitForFrame((f) => f.cmd === SmuxCommand.Fin && f.streamId === 2, 2_000, 'FIN 2');
  });

  it('sends NOPs on stream 0 when keep-alive is on', async () => {
    const { raw } = await rawPair({ keepAlive: { intervalMs: 20, timeoutMs: 5_000 } });
    await raw.waitForFrame((f) => f.cmd === SmuxCommand.Nop, 2_000, 'NOP');
    expect(raw.frames.every((f) => f.cmd === SmuxCommand.Nop && f.streamId === 0)).toBe(true);
  });

  for (const [what, hex, field] of [
    ['a wrong version', '0202000003000000', 'version'],
    ['UPD, which is smux version 2 only', '0104000003000000', 'cmd'],
    ['an unknown command', '0109000003000000', 'cmd'],
  ] as const) {
    it(`answers ${what} with a ProtocolError, then closes and fails its streams`, async () => {
      const { client, raw } = await rawPair();
      const events: string[] = [];
      const s = client.openStream();
      const streamError = recordError(s);
      client.on('error', () => events.push('error'));
      const closed = next<[Error | undefined]>(client, 'close');
      raw.send(SmuxCommand.Nop, 0);
      raw.socket.write(Buffer.from(hex, 'hex'));
      const [reason] = await closed;
      events.push('close');
      expect(events).toEqual(['error', 'close']);
      expect(reason).toBeInstanceOf(ProtocolError);
      expect((reason as ProtocolError).field).toBe(field);
      expect((reason as ProtocolError).offset).toBe(field === 'version' ? 8 : 9);
      await waitFor(() => s.destroyed, 1_000, 'stream destroyed');
      expect(streamError.error).toBe(reason);
    });
  }
});

/**
 * A carrier whose writes complete only when the test says so: a full carrier on demand. Not a mock of our
 * code, just a slow byte sink.
 */
class SlowCarrier extends Duplex {
  readonly written: Buffer[] = [];
  readonly #pending: (() => void)[] = [];

  constructor() {
    super({ writableHighWaterMark: 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.written.push(chunk);
    this.#pending.push(() => callback());
  }

  override _read(): void {}

  /** Complete every write so far, and those they let through, until the carrier is idle. */
  async completeAll(): Promise<void> {
    for (let i = 0; i < 1_000 && this.#pending.length > 0; i++) {
      for (const done of this.#pending.splice(0)) done();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  frames(): string[] {
    const frames: SmuxFrame[] = [];
    new FrameParser((f) => frames.push(f)).push(Buffer.concat(this.written));
    return frames.map((f) => `${['SYN', 'FIN', 'PSH', 'NOP'][f.cmd]} ${f.streamId}${f.cmd === SmuxCommand.Psh ? ` ${f.data.length}` : ''}`);
  }
}

describe('ordered writer over a carrier that fills up', () => {
  it('holds stream writes while the carrier is full, then writes every frame in order, whole', async () => {
    const carrier = new SlowCarrier();
    const session = new SmuxSession(carrier, { role: 'client', keepAlive: false });
    cleanups.push(() => session.close());
    const a = client(session);
    let aDone = false;
    a.write(Buffer.alloc(40_000, 1), () => (aDone = true));
    const b = client(session);
    let bDone = false;
    b.write('x', () => (bDone = true));
    await sleep(10);
    // The carrier is full: A's callback is held, B's frame waits in the session queue.
    expect(aDone).toBe(false);
    expect(bDone).toBe(false);
    expect(a.write('more')).toBe(false);
    expect(session.stats.carrierDrainWaits).toBe(1);
    await carrier.completeAll();
    expect(aDone && bDone).toBe(true);
    expect(carrier.frames()).toEqual(['SYN 3', 'PSH 3 32768', 'PSH 3 7232', 'SYN 5', 'PSH 5 1', 'PSH 3 4']);
  });

  it('lets a stream be destroyed while its write waits on the carrier, and sends its FIN after its data', async () => {
    const carrier = new SlowCarrier();
    const session = new SmuxSession(carrier, { role: 'client', keepAlive: false });
    cleanups.push(() => session.close());
    const a = client(session);
    a.write(Buffer.alloc(40_000, 1));
    const b = client(session);
    b.write('queued');
    b.destroy();
    a.destroy();
    await carrier.completeAll();
    expect(carrier.frames()).toEqual(['SYN 3', 'PSH 3 32768', 'PSH 3 7232', 'SYN 5', 'PSH 5 6', 'FIN 5', 'FIN 3']);
    expect(session.streamCount).toBe(0);
  });

  it('fails a held write and destroys its stream with CHANNEL_CLOSED when the carrier dies', async () => {
    const carrier = new SlowCarrier();
    const session = new SmuxSession(carrier, { role: 'client', keepAlive: false });
    const a = session.openStream();
    const streamError = recordError(a);
    const writeResult = new Promise<Error | null | undefined>((resolve) => a.write(Buffer.alloc(40_000, 1), resolve));
    const closed = next<[Error | undefined]>(session, 'close');
    carrier.destroy();
    const [reason] = await closed;
    expect((reason as BridgeError).code).toBe('CHANNEL_CLOSED');
    expect(await within(writeResult, 1_000, 'write callback')).toBe(reason);
    await waitFor(() => a.destroyed, 1_000, 'stream destroyed');
    expect(streamError.error).toBe(reason);
  });

  it('close() hands queued frames and FINs to the carrier despite backpressure', async () => {
    const carrier = new SlowCarrier();
    const session = new SmuxSession(carrier, { role: 'client', keepAlive: false });
    const a = client(session);
    a.write(Buffer.alloc(40_000, 1));
    const b = client(session);
    b.write('queued');
    session.close();
    await carrier.completeAll();
    expect(carrier.frames()).toEqual(['SYN 3', 'PSH 3 32768', 'PSH 3 7232', 'SYN 5', 'PSH 5 6', 'FIN 3', 'FIN 5']);
    expect(carrier.destroyed).toBe(false);
  });
});

function client(session: SmuxSession): SmuxStream {
  const stream = session.openStream();
  stream.on('error', () => {});
  return stream;
}

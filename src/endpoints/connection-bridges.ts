import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { coalesceWrites } from '../coalesce-writes.js';
import { FlagValue } from '../protocol/index.js';
import type { BridgeSession } from '../session/index.js';
import type { SmuxStream } from '../smux/index.js';

/** Byte counters shared by a forwarder's connections. */
export interface TrafficCounters {
  connectionsOpened: number;
  connectionsActive: number;
  bytesToRemote: number;
  bytesFromRemote: number;
}

export function newTrafficCounters(): TrafficCounters {
  return { connectionsOpened: 0, connectionsActive: 0, bytesToRemote: 0, bytesFromRemote: 0 };
}

/** After a local FIN, how long the remote side may stay silent before we close the stream ourselves. */
export const DEFAULT_HALF_CLOSE_LINGER_MS = 10_000;

/**
 * Join a local socket to one smux stream.
 *
 * smux v1 has no half-close, and the agent answers a FIN by closing the destination connection outright
 * (the reply in flight is lost). A local FIN cannot tell a half-close from a full close, so on local EOF we
 * keep the stream open while the remote side keeps talking, and FIN it when the remote side ends, or after
 * `lingerMs` of remote silence (so connections whose server never closes do not leak).
 */
export function bridgeMuxConnection(socket: net.Socket, stream: SmuxStream, counters: TrafficCounters, lingerMs = DEFAULT_HALF_CLOSE_LINGER_MS): void {
  counters.connectionsOpened++;
  counters.connectionsActive++;
  let linger: NodeJS.Timeout | undefined;
  const armLinger = (): void => {
    if (linger) clearTimeout(linger);
    linger = setTimeout(() => socket.destroy(), lingerMs);
    linger.unref();
  };
  socket.on('data', (chunk: Buffer) => (counters.bytesToRemote += chunk.length));
  stream.on('data', (chunk: Buffer) => {
    counters.bytesFromRemote += chunk.length;
    if (linger) armLinger();
  });
  socket.once('end', armLinger);
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => stream.destroy());
  stream.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (linger) clearTimeout(linger);
    counters.connectionsActive--;
    stream.destroy();
  });
  stream.on('close', () => {
    // After a remote FIN the pipe has ended our write side; otherwise the session died under us.
    if (!socket.writableEnded) socket.destroy();
  });
}

/**
 * Basic port forwarding (agents up to 3.0.196.0, SPEC §7): the session carries one connection at a time.
 * Extra connections wait their turn; when the active one closes, DisconnectToPort goes out after its bytes.
 */
export class BasicConnectionQueue {
  private readonly waiting: net.Socket[] = [];
  private active: net.Socket | undefined;
  private readonly session: BridgeSession;
  private readonly counters: TrafficCounters;

  constructor(session: BridgeSession, counters: TrafficCounters) {
    this.session = session;
    this.counters = counters;
    session.on('flag', (flag: number) => {
      // The agent could not reach the destination: this connection cannot be served.
      if (flag === FlagValue.ConnectToPortError) this.active?.destroy();
    });
  }

  add(socket: net.Socket): void {
    socket.pause();
    socket.on('error', () => socket.destroy());
    this.waiting.push(socket);
    socket.once('close', () => {
      const i = this.waiting.indexOf(socket);
      if (i >= 0) this.waiting.splice(i, 1);
    });
    this.next();
  }

  /** The session is over: connections still waiting for their turn will not get one. */
  dropWaiting(): void {
    for (const s of this.waiting.splice(0)) s.destroy();
  }

  closeAll(): void {
    this.dropWaiting();
    this.active?.destroy();
  }

  private next(): void {
    if (this.active !== undefined || this.session.isClosed) return;
    const socket = this.waiting.shift();
    if (socket === undefined) return;
    this.active = coalesceWrites(socket); // basic mode writes one ≤ 1 KiB payload at a time
    this.counters.connectionsOpened++;
    this.counters.connectionsActive++;
    const data: Duplex = this.session.data;
    const onRemoteData = (chunk: Buffer): void => {
      this.counters.bytesFromRemote += chunk.length;
      if (!socket.write(chunk)) {
        data.pause();
        socket.once('drain', () => data.resume());
      }
    };
    socket.on('data', (chunk: Buffer) => {
      this.counters.bytesToRemote += chunk.length;
      if (!data.write(chunk)) {
        socket.pause();
        data.once('drain', () => socket.resume());
      }
    });
    // The session ended cleanly: the connection ends after the last bytes received; if it failed, at once.
    const onRemoteEnd = (): void => void socket.end();
    const onRemoteClose = (): void => {
      if (!data.readableEnded) socket.destroy();
    };
    data.on('data', onRemoteData);
    data.once('end', onRemoteEnd);
    data.once('close', onRemoteClose);
    data.resume();
    socket.resume();
    // Basic mode cannot carry a half-close at all: a local FIN ends this connection.
    socket.once('end', () => socket.end());
    socket.once('close', () => {
      data.off('data', onRemoteData);
      data.off('end', onRemoteEnd);
      data.off('close', onRemoteClose);
      data.pause();
      this.counters.connectionsActive--;
      // An empty write's callback runs once every earlier byte has become a channel message,
      // so the flag is sequenced after them.
      data.write(Buffer.alloc(0), () => {
        if (!this.session.isClosed) this.session.sendFlag(FlagValue.DisconnectToPort);
        this.active = undefined;
        this.next();
      });
    });
  }
}

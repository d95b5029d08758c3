import type net from 'node:net';
import { coalesceWrites } from '../../coalesce-writes.js';
import { dial, type ResolveDestination } from './dialer.js';

/**
 * Fault injection: the session's destinations stop taking bytes for a while, as a server that stops reading
 * does once its TCP buffers are full. The agent's writes wait (Go's conn.Write blocks), and with them the
 * reader that made them.
 */
export class DestinationGate {
  private blockedUntilMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];

  block(ms: number): void {
    this.blockedUntilMs = Math.max(this.blockedUntilMs, Date.now() + ms);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), Math.max(0, this.blockedUntilMs - Date.now()));
    this.timer.unref();
  }

  get blocked(): boolean {
    return Date.now() < this.blockedUntilMs;
  }

  /** Resolves when the gate opens. */
  whenOpen(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  open(): void {
    this.blockedUntilMs = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * One write into a destination connection, with Go's blocking semantics: undefined when the bytes were
 * taken, a promise when the write blocks (socket buffer full, or the gate closed), an Error when the
 * connection is gone.
 */
export function writeToDestination(socket: net.Socket, chunk: Buffer, gate: DestinationGate): undefined | Error | Promise<undefined | Error> {
  if (gate.blocked) return gate.whenOpen().then(() => writeToDestination(socket, chunk, gate));
  if (socket.destroyed || !socket.writable) return new Error('write: use of closed network connection');
  if (socket.write(chunk)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve(socket.destroyed ? new Error('write: connection closed') : undefined);
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Dial host:port as the agent's DialCall does, with writes batched per tick. */
export async function dialDestination(resolve: ResolveDestination, host: string, port: string, refuse: boolean): Promise<net.Socket> {
  const socket = await dial(resolve, host, port, refuse);
  socket.on('error', () => {}); // reported through close; a destination reset must not crash the sandbox
  return coalesceWrites(socket);
}

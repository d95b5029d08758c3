import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { FlagValue, portPluginMode, smuxKeepAliveFor } from '../protocol/index.js';
import { rateLimited, type BridgeSession, type SessionStatus } from '../session/index.js';
import { SmuxSession } from '../smux/index.js';
import type { Carrier, CarrierLoad, LocalConnection } from './carrier.js';
import { BasicConnectionQueue, bridgeMuxConnection, newTrafficCounters, type TrafficCounters } from './connection-bridges.js';
import { smuxFailure } from './smux-failure.js';
import { waitAtMost } from './wait-at-most.js';

/** How long local connections may take to read what arrived before the session ended (a stalled reader must not hold us). */
const LOCAL_DRAIN_TIMEOUT_MS = 10_000;

/**
 * What to do with the open connections when the session ends (decided synchronously, before the end of the
 * session's data reaches them): `drain` lets them read what arrived and then end; `reset` says they were lost
 * (a new session takes over the listener, their bytes cannot follow) and resets them.
 */
export type EndOfSessionAction = 'drain' | 'reset';

export interface SessionCarrierOptions {
  logger?: Logger;
  /** For messages: "port 5432 on i-…". */
  destination: string;
}

/**
 * One open port session carrying local connections: all at once over smux when the agent multiplexes, one at a
 * time otherwise (basic mode). Ends when its session ends.
 */
export class SessionCarrier extends EventEmitter implements Carrier {
  readonly session: BridgeSession;
  readonly counters: TrafficCounters = newTrafficCounters();
  private readonly logger: Logger;
  private readonly connections = new Map<net.Socket, string>();
  private smux: SmuxSession | undefined;
  private basic: BasicConnectionQueue | undefined;
  private closing = false;
  private shutdown: Promise<void> | undefined;
  private readonly ended: Promise<BridgeError | undefined>;
  private endOfSession: (error: BridgeError | undefined) => EndOfSessionAction = () => 'drain';

  /**
   * Carry connections over `session` (open, a port session). A session whose handshake says it is not a
   * LocalPortForwarding one is terminated: INVALID_DOCUMENT.
   */
  static async over(session: BridgeSession, options: SessionCarrierOptions): Promise<SessionCarrier> {
    if (!session.isClosed && portPluginMode(session.handshake) === 'stream') {
      const type = session.handshake.properties.type;
      await session.terminate();
      throw new BridgeError(ErrorCode.INVALID_DOCUMENT, `the document gives a ${type ? `'${type}'` : 'stream-mode (SSH-style)'} session; forward needs a port-forwarding document (type LocalPortForwarding) — use \`ssm-bridge proxy\` for stream sessions`);
    }
    return new SessionCarrier(session, options);
  }

  private constructor(session: BridgeSession, options: SessionCarrierOptions) {
    super();
    this.session = session;
    this.logger = options.logger ?? silentLogger;
    const destination = options.destination;
    session.on('status', (status: SessionStatus) => this.emit('status', status));
    // Rate-limited: every local connection may fail so (or a hostile service may say so a thousand times).
    const connectErrorWarning = rateLimited(5_000, (_: undefined, suppressed: number) =>
      this.logger.warn(
        { event: 'connect-to-port-error', sessionId: session.sessionId, destination, ...(suppressed > 0 ? { suppressed } : {}) },
        `the agent could not connect to ${destination}; that connection was closed (is the service there running?)${suppressed > 0 ? ` (${suppressed + 1} times since the last warning)` : ''}`,
      ),
    );
    session.on('flag', (flag: number) => {
      if (flag === FlagValue.ConnectToPortError) connectErrorWarning(undefined);
    });
    if (session.isClosed) {
      // Closed in the same breath as the handshake: nothing to carry, and its 'closed' event has passed.
      this.ended = session.closed();
      return;
    }
    if (session.multiplexed) {
      this.smux = new SmuxSession(session.data, { role: 'client', keepAlive: smuxKeepAliveFor(session.handshake.agentVersion), allowPeerStreams: false });
      this.smux.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'smux error'));
      this.smux.on('close', (reason?: Error) => {
        if (!this.closing && !session.isClosed) void session.terminate(undefined, smuxFailure(reason));
      });
    } else {
      this.basic = new BasicConnectionQueue(session, this.counters);
    }
    // Synchronously on 'closed': before the end of `data` reaches the streams and ends their sockets (next tick).
    session.once('closed', (err?: BridgeError) => {
      if (err?.code === ErrorCode.DATA_LOST) {
        // Bytes of some connection never arrived: a clean end would pass a truncated stream off as complete.
        if (this.connections.size > 0) this.logger.warn({ sessionId: session.sessionId, connections: this.connections.size }, 'data was lost; resetting the open local connections');
        this.resetAll();
        return;
      }
      if (this.closing || this.endOfSession(err) === 'drain') return;
      for (const label of this.connections.values()) {
        this.logger.warn({ event: 'connection-lost', sessionId: session.sessionId, connection: label }, `connection ${label} was lost with session ${session.sessionId}; resetting it`);
      }
      this.resetAll();
    });
    // Ended when the session is; the local connections drain after it in their own time (bounded).
    this.ended = session.closed();
    void this.ended.then(() => this.shutdownLocal(this.closing ? 0 : LOCAL_DRAIN_TIMEOUT_MS));
  }

  /** Decide, when the session ends, what becomes of the open connections (default: they drain). */
  setEndOfSession(decide: (error: BridgeError | undefined) => EndOfSessionAction): void {
    this.endOfSession = decide;
  }

  get mode(): 'multiplexed' | 'basic' {
    return this.smux ? 'multiplexed' : 'basic';
  }

  get sessionIds(): readonly string[] {
    return [this.session.sessionId];
  }

  sessionCounters(): Array<{ sessionId: string; counters: TrafficCounters }> {
    return [{ sessionId: this.session.sessionId, counters: this.counters }];
  }

  load(): CarrierLoad {
    return { ready: !this.closing && !this.session.isClosed, connections: this.connections.size, messagesInFlight: this.session.channel.bufferedMessages };
  }

  /** Connections open on this session now. */
  get openConnections(): number {
    return this.connections.size;
  }

  /** Resolves when the session has ended (its connections then drain, or were reset). */
  closed(): Promise<BridgeError | undefined> {
    return this.ended;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.session.terminate();
    await this.shutdownLocal(0);
  }

  carry({ socket, label }: LocalConnection): void {
    if (this.closing || this.session.isClosed) {
      socket.destroy();
      return;
    }
    this.connections.set(socket, label);
    this.logger.debug({ event: 'connection', connection: label, sessionId: this.session.sessionId }, `connection ${label} goes over session ${this.session.sessionId}`);
    socket.once('close', () => this.connections.delete(socket));
    if (this.smux) {
      let stream;
      try {
        stream = this.smux.openStream();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, connection: label }, 'could not open a stream');
        socket.destroy();
        return;
      }
      bridgeMuxConnection(socket, stream, this.counters);
    } else {
      this.basic!.add(socket);
    }
  }

  private resetAll(): void {
    for (const socket of this.connections.keys()) resetConnection(socket);
  }

  /**
   * Close the local connections. With `drainMs`, connections first get that long to take the bytes already
   * received and close on their own (smux streams end after their data when the session ends cleanly; see
   * SmuxStream); whatever is still open after that is destroyed.
   */
  private shutdownLocal(drainMs: number): Promise<void> {
    this.shutdown ??= (async () => {
      if (drainMs > 0 && this.connections.size > 0) {
        this.basic?.dropWaiting();
        const closed = [...this.connections.keys()].map((s) => (s.closed ? undefined : new Promise((resolve) => s.once('close', resolve))));
        await waitAtMost(Promise.all(closed), drainMs);
      }
      this.smux?.close();
      this.basic?.closeAll();
      for (const s of this.connections.keys()) s.destroy();
    })();
    return this.shutdown;
  }
}

/** Reset a local connection (RST, so its client sees an error, not an end); a unix socket has no RST: destroy it. */
export function resetConnection(socket: net.Socket): void {
  socket.on('error', () => {});
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

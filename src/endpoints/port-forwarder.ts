import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { FlagValue, smuxKeepAliveFor } from '../protocol/index.js';
import { smuxFailure } from './smux-failure.js';
import { BridgeSession, rateLimited, type BridgeSessionOptions, type SessionStatus, type SsmApi, type StartSessionInput } from '../session/index.js';
import { SmuxSession } from '../smux/index.js';
import { BasicConnectionQueue, bridgeMuxConnection, newTrafficCounters, type TrafficCounters } from './connection-bridges.js';
import { describeEndpoint, listenLocal, type LocalEndpoint, type LocalListener } from './local-listener.js';
import { waitAtMost } from './wait-at-most.js';

export interface PortForwardOptions {
  api: SsmApi;
  target: string;
  /** Port on the node, or on `remoteHost` beyond it. Ignored when `documentName` is given. */
  remotePort?: number;
  remoteHost?: string;
  /** Any Port document; its `parameters` are passed as they are. */
  documentName?: string;
  parameters?: Record<string, string[]>;
  reason?: string;
  local: LocalEndpoint;
  logger?: Logger;
  session?: Omit<BridgeSessionOptions, 'api' | 'start' | 'logger'>;
  /**
   * A session already open (BridgeSession.open: `ssm-bridge plugin`), served instead of starting one; the
   * forwarder owns it from here, and terminates it when the listener cannot be bound.
   */
  openSession?: BridgeSession;
}

/** Where the agent connects, in words: "db.internal:5432", "port 5432 on i-…", or the document's. */
function destinationOf(options: PortForwardOptions): string {
  if (options.documentName) return `the destination of ${options.documentName} on ${options.target}`;
  if (options.remoteHost) return `${options.remoteHost}:${options.remotePort ?? '?'} (through ${options.target})`;
  return `port ${options.remotePort ?? '?'} on ${options.target}`;
}

/** How long local connections may take to read what arrived before the session ended (a stalled reader must not hold us). */
const LOCAL_DRAIN_TIMEOUT_MS = 10_000;

/** The StartSession input for a forward (SPEC §1 port documents). */
export function forwardStartInput(options: PortForwardOptions, localPort: number): StartSessionInput {
  if (options.documentName) {
    return { target: options.target, documentName: options.documentName, ...(options.parameters ? { parameters: options.parameters } : {}), ...(options.reason ? { reason: options.reason } : {}) };
  }
  if (options.remotePort === undefined) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, 'a remote port is required (--remote-port)');
  const parameters: Record<string, string[]> = { portNumber: [String(options.remotePort)], localPortNumber: [String(localPort)] };
  if (options.remoteHost) parameters.host = [options.remoteHost];
  return {
    target: options.target,
    documentName: options.remoteHost ? 'AWS-StartPortForwardingSessionToRemoteHost' : 'AWS-StartPortForwardingSession',
    parameters,
    ...(options.reason ? { reason: options.reason } : {}),
  };
}

/**
 * `forward`: a local listener whose connections travel over one session — multiplexed with smux when the
 * agent supports it, one at a time otherwise. Events: `status` (SessionStatus), `listening` (endpoint).
 */
export class PortForwarder extends EventEmitter {
  readonly session: BridgeSession;
  readonly listener: LocalListener;
  readonly counters: TrafficCounters;
  private readonly logger: Logger;
  private readonly sockets = new Set<net.Socket>();
  private smux: SmuxSession | undefined;
  private basic: BasicConnectionQueue | undefined;
  private closing = false;
  private shutdown: Promise<void> | undefined;

  /**
   * Bind first (a port in use fails before any session exists), then start the session, then serve.
   * Connections that arrive meanwhile wait.
   */
  static async start(options: PortForwardOptions, onStatus?: (status: SessionStatus) => void): Promise<PortForwarder> {
    const pending: net.Socket[] = [];
    let forwarder: PortForwarder | undefined;
    let listener: LocalListener;
    try {
      listener = await listenLocal(options.local, (socket) => {
        // For its whole life: a client that resets while the session starts must not crash us.
        socket.on('error', () => {});
        if (forwarder) forwarder.accept(socket);
        else pending.push(socket);
      });
    } catch (err) {
      await options.openSession?.terminate();
      throw err;
    }
    const localPort = listener.endpoint.kind === 'tcp' ? listener.endpoint.port : 0;
    let session: BridgeSession;
    try {
      session = options.openSession ?? (await BridgeSession.start({
        ...options.session,
        api: options.api,
        start: forwardStartInput(options, localPort),
        ...(options.logger ? { logger: options.logger } : {}),
      }));
    } catch (err) {
      for (const s of pending) s.destroy();
      await listener.close();
      throw err;
    }
    if (session.handshake.properties.type !== 'LocalPortForwarding') {
      // The connections that waited cannot be served; closing the listener would wait for them for ever.
      for (const s of pending) s.destroy();
      await session.terminate();
      await listener.close();
      throw new BridgeError(ErrorCode.INVALID_DOCUMENT, `the document gives a ${session.handshake.properties.type ? `'${session.handshake.properties.type}'` : 'stream-mode (SSH-style)'} session; forward needs a port-forwarding document (type LocalPortForwarding) — use \`ssm-bridge proxy\` for stream sessions`);
    }
    forwarder = new PortForwarder(session, listener, destinationOf(options), options.logger ?? silentLogger, onStatus);
    for (const s of pending.splice(0)) forwarder.accept(s);
    return forwarder;
  }

  private constructor(session: BridgeSession, listener: LocalListener, destination: string, logger: Logger, onStatus?: (status: SessionStatus) => void) {
    super();
    this.session = session;
    this.listener = listener;
    this.logger = logger;
    this.counters = newTrafficCounters();
    if (onStatus) session.on('status', onStatus);
    session.on('status', (status: SessionStatus) => this.emit('status', status));
    // Rate-limited: every local connection may fail so (or a hostile service may say so a thousand times).
    const connectErrorWarning = rateLimited(5_000, (_: undefined, suppressed: number) =>
      this.logger.warn(
        { event: 'connect-to-port-error', sessionId: session.sessionId, destination, ...(suppressed > 0 ? { suppressed } : {}) },
        `the agent could not connect to ${destination}; that connection was closed (is the service there running?)${suppressed > 0 ? ` (${suppressed + 1} times since the last warning)` : ''}`,
      ),
    );
    session.on('flag', (flag: number) => {
      if (flag === FlagValue.ConnectToPortError) {
        connectErrorWarning(undefined);
        this.emit('connect-error');
      }
    });
    if (session.multiplexed) {
      this.smux = new SmuxSession(session.data, { role: 'client', keepAlive: smuxKeepAliveFor(session.handshake.agentVersion), allowPeerStreams: false });
      this.smux.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'smux error'));
      this.smux.on('close', (reason?: Error) => {
        if (!this.closing && !session.isClosed) void session.terminate(undefined, smuxFailure(reason));
      });
    } else {
      this.basic = new BasicConnectionQueue(session, this.counters);
    }
    // The service (or a failure) ended the session: let local apps have what was received first.
    // Synchronously on 'closed': before the end of `data` reaches the streams and ends their sockets (next tick).
    session.once('closed', (err?: BridgeError) => {
      if (err?.code !== ErrorCode.DATA_LOST) return;
      // Bytes of some connection never arrived: a clean end would pass a truncated stream off as complete.
      if (this.sockets.size > 0) this.logger.warn({ connections: this.sockets.size }, 'data was lost; resetting the open local connections');
      for (const s of this.sockets) resetConnection(s);
    });
    void session.closed().then(() => this.shutdownLocal(this.closing ? 0 : LOCAL_DRAIN_TIMEOUT_MS));
  }

  get endpoint(): LocalEndpoint {
    return this.listener.endpoint;
  }

  get mode(): 'multiplexed' | 'basic' {
    return this.smux ? 'multiplexed' : 'basic';
  }

  describe(): string {
    return describeEndpoint(this.endpoint);
  }

  /** Resolves when the session ends, with the error that ended it (undefined after close()). */
  closed(): Promise<BridgeError | undefined> {
    return this.session.closed();
  }

  /** Terminate the session and close every local connection. */
  async close(): Promise<void> {
    this.closing = true;
    await this.session.terminate();
    await this.shutdownLocal(0);
  }

  private accept(socket: net.Socket): void {
    if (this.closing || this.session.isClosed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (this.smux) {
      let stream;
      try {
        stream = this.smux.openStream();
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'could not open a stream');
        socket.destroy();
        return;
      }
      bridgeMuxConnection(socket, stream, this.counters);
    } else {
      this.basic!.add(socket);
    }
  }

  /**
   * Stop accepting, then close the local connections. With `drainMs`, connections first get that long to
   * take the bytes already received and close on their own (smux streams end after their data when the
   * session ends cleanly; see SmuxStream); whatever is still open after that is destroyed.
   */
  private shutdownLocal(drainMs: number): Promise<void> {
    this.closing = true;
    this.shutdown ??= (async () => {
      const listenerClosed = this.listener.close();
      if (drainMs > 0 && this.sockets.size > 0) {
        this.basic?.dropWaiting();
        const closed = [...this.sockets].map((s) => (s.closed ? undefined : new Promise((resolve) => s.once('close', resolve))));
        await waitAtMost(Promise.all(closed), drainMs);
      }
      this.smux?.close();
      this.basic?.closeAll();
      for (const s of this.sockets) s.destroy();
      await listenerClosed;
    })();
    return this.shutdown;
  }
}

/** Reset a local connection (RST, so its client sees an error, not an end); a unix socket has no RST: destroy it. */
function resetConnection(socket: net.Socket): void {
  socket.on('error', () => {});
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { BridgeError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { BridgeSession, type BridgeSessionOptions, type SessionStatus, type SsmApi } from '../session/index.js';
import type { Carrier } from './carrier.js';
import type { TrafficCounters } from './connection-bridges.js';
import { describeEndpoint, listenLocal, type LocalEndpoint, type LocalListener } from './local-listener.js';
import { ReplacingCarrier } from './replacing-carrier.js';
import { MAX_STRIPED_SESSIONS, StripedCarrier } from './striped-carrier.js';
import { describeDestination, forwardStartInput, type TunnelDestination } from './tunnel-spec.js';

export { forwardStartInput } from './tunnel-spec.js';

/** Resume budget when the options give none: also the budget for starting a replacement session. */
const DEFAULT_RESUME_TIMEOUT_MS = 10 * 60_000;

export interface PortForwardOptions extends TunnelDestination {
  api: SsmApi;
  local: LocalEndpoint;
  logger?: Logger;
  session?: Omit<BridgeSessionOptions, 'api' | 'start' | 'logger'>;
  /**
   * When the session ends in a way a new session fixes (expiry, idle timeout, terminated elsewhere, the agent
   * restarting, resume given up), start a new one behind the same listener; connections open on the old one are
   * reset. Default false here (the forwarder ends with its session); the CLI turns it on (--no-reconnect: off).
   */
  reconnect?: boolean;
  /** Stripe connections over this many sessions (default 1); each resumes and is replaced on its own. */
  sessions?: number;
  /**
   * A session already open (BridgeSession.open: `ssm-bridge plugin`), served instead of starting one; the
   * forwarder owns it from here, and terminates it when the listener cannot be bound.
   */
  openSession?: BridgeSession;
}

/**
 * `forward`: a local listener whose connections a carrier takes to the remote side (one session, multiplexed
 * with smux when the agent supports it, one connection at a time otherwise; replaced when it ends, if asked).
 * Events: `status` (SessionStatus).
 */
export class PortForwarder extends EventEmitter {
  readonly listener: LocalListener;
  readonly carrier: Carrier;
  private closing = false;
  private connectionCount = 0;

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
    const resumeTimeoutMs = options.session?.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS;
    const sessions = options.sessions ?? 1;
    if (!Number.isInteger(sessions) || sessions < 1 || sessions > MAX_STRIPED_SESSIONS) {
      await listener.close();
      await options.openSession?.terminate();
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `sessions must be a whole number from 1 to ${MAX_STRIPED_SESSIONS} (got ${JSON.stringify(options.sessions)})`);
    }
    const member = (firstSession?: BridgeSession, memberSignal?: AbortSignal): Promise<ReplacingCarrier> =>
      ReplacingCarrier.start({
        // Built at each start (a session given by the caller needs no StartSession input).
        startSession: async (signal) => {
          const abort = signal ?? memberSignal;
          return BridgeSession.start({ ...options.session, api: options.api, start: forwardStartInput(options, localPort), ...(options.logger ? { logger: options.logger } : {}), ...(abort ? { signal: abort } : {}) });
        },
        ...(firstSession ? { firstSession } : {}),
        reconnect: options.reconnect ?? false,
        budgetMs: resumeTimeoutMs,
        destination: describeDestination(options),
        ...(options.logger ? { logger: options.logger } : {}),
      });
    let carrier: Carrier;
    try {
      carrier =
        sessions === 1
          ? await member(options.openSession)
          : await StripedCarrier.start({ sessions, startMember: (signal) => member(undefined, signal), budgetMs: resumeTimeoutMs, ...(options.logger ? { logger: options.logger } : {}) });
    } catch (err) {
      // The connections that waited cannot be served; closing the listener would wait for them for ever.
      for (const s of pending) s.destroy();
      await listener.close();
      throw err;
    }
    forwarder = new PortForwarder(carrier, listener, onStatus);
    for (const s of pending.splice(0)) forwarder.accept(s);
    return forwarder;
  }

  private constructor(carrier: Carrier, listener: LocalListener, onStatus?: (status: SessionStatus) => void) {
    super();
    this.carrier = carrier;
    this.listener = listener;
    if (onStatus) carrier.on('status', onStatus);
    carrier.on('status', (status: SessionStatus) => this.emit('status', status));
    void carrier.closed().then(() => this.shutdown());
  }

  get endpoint(): LocalEndpoint {
    return this.listener.endpoint;
  }

  get mode(): 'multiplexed' | 'basic' {
    return this.carrier.mode;
  }

  /** The session carrying connections now (after a replacement, the new one). */
  get sessionId(): string {
    return this.carrier.sessionIds[0] ?? '';
  }

  get sessionIds(): readonly string[] {
    return this.carrier.sessionIds;
  }

  get counters(): TrafficCounters {
    return this.carrier.counters;
  }

  describe(): string {
    return describeEndpoint(this.endpoint);
  }

  /** Resolves when the forwarder ends for good, with the error that ended it (undefined after close()). */
  closed(): Promise<BridgeError | undefined> {
    return this.carrier.closed();
  }

  /** Terminate the sessions and close every local connection and the listener. */
  async close(): Promise<void> {
    this.closing = true;
    await this.carrier.close();
    await this.shutdown();
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const n = ++this.connectionCount;
    const label = socket.remoteAddress ? `#${n} from ${socket.remoteAddress.includes(':') ? `[${socket.remoteAddress}]` : socket.remoteAddress}:${socket.remotePort}` : `#${n}`;
    this.carrier.carry({ socket, label });
  }

  private shutdown(): Promise<void> {
    this.closing = true;
    return this.listener.close();
  }
}

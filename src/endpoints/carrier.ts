import type net from 'node:net';
import type { BridgeError } from '../errors.js';
import type { SessionStatus } from '../session/index.js';
import type { TrafficCounters } from './connection-bridges.js';

/** One local connection handed to a carrier: the socket, and how logs name it. */
export interface LocalConnection {
  socket: net.Socket;
  /** `#3 from 127.0.0.1:50712`, for log lines about this connection. */
  label: string;
}

export interface CarrierLoad {
  ready: boolean;
  connections: number;
  /** Messages written and not yet acknowledged (a proxy for bytes in flight: at most 1 KiB each from the agent). */
  messagesInFlight: number;
}

/**
 * What carries a listener's connections to the remote side. The forwarder knows only this: one session with
 * smux or one connection at a time (SessionCarrier), one that starts a new session when its session ends
 * (ReplacingCarrier), and later several at once. Events: `status` (SessionStatus).
 */
export interface Carrier {
  /** How connections travel on the current session. */
  readonly mode: 'multiplexed' | 'basic';
  /** The ids of the sessions carrying connections now. */
  readonly sessionIds: readonly string[];
  /** Totals since the carrier started, across every session it used. */
  readonly counters: TrafficCounters;
  /** Per session carrying connections now: its id and its own counters (one entry, or one per striped member). */
  sessionCounters(): Array<{ sessionId: string; counters: TrafficCounters }>;
  /** How busy it is, for choosing where a new connection goes; `ready` is false while it has no open session. */
  load(): CarrierLoad;
  /** Carry one local connection; the carrier owns the socket from here. */
  carry(connection: LocalConnection): void;
  /** Resolves when the carrier has ended for good, with the error that ended it (undefined after close()). */
  closed(): Promise<BridgeError | undefined>;
  /** Terminate every session and close every connection. */
  close(): Promise<void>;
  on(event: 'status', listener: (status: SessionStatus) => void): this;
}

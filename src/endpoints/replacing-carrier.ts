import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { rateLimited, RetryPolicy, sessionEndVerdict, startFailureVerdict, type BridgeSession, type SessionStatus } from '../session/index.js';
import type { Carrier, CarrierLoad, LocalConnection } from './carrier.js';
import { newTrafficCounters, type TrafficCounters } from './connection-bridges.js';
import { SessionCarrier } from './session-carrier.js';

export interface ReplacingCarrierOptions {
  /** Start a session with the tunnel's document and parameters (the same for the first and every replacement). */
  startSession: (signal?: AbortSignal) => Promise<BridgeSession>;
  /** The first session, already open (`ssm-bridge plugin`), instead of starting one. */
  firstSession?: BridgeSession;
  /** Replace a session that ended in a replaceable way (false: end with it, as the official plugin does). */
  reconnect: boolean;
  /** How long starting a replacement may keep failing before the run ends (--resume-timeout). */
  budgetMs: number;
  logger?: Logger;
  destination: string;
}

/** Connections that arrive while a replacement starts wait for it; beyond this many, they are refused. */
export const MAX_WAITING_CONNECTIONS = 128;
/** A replacement session that lives this long ends the replacement outage; one that ends sooner continues it. */
const REPLACEMENT_STABLE_MS = 30_000;

/*
 * State (transitions only in `transition`):
 *
 *   open --session ended, replaceable--> replacing --new session open--> open
 *    |                                       |
 *    +--session ended, final / close()-------+--final start failure / budget spent / close()--> closed
 */
type ReplacingState = 'open' | 'replacing' | 'closing' | 'closed';

/**
 * A carrier that outlives its sessions: when the session ends for a reason a new session fixes (expiry, idle
 * timeout, terminated elsewhere, the agent restarting, resume given up), the open connections are reset (their
 * bytes cannot move to another session) and a new session with the same document takes over; connections that
 * arrive meanwhile wait for it. Starting it retries with backoff within the budget; a final answer ends it.
 */
export class ReplacingCarrier extends EventEmitter implements Carrier {
  private state: ReplacingState = 'open';
  private current: SessionCarrier;
  private readonly options: ReplacingCarrierOptions;
  private readonly logger: Logger;
  private readonly waiting: LocalConnection[] = [];
  private readonly retry: RetryPolicy;
  private readonly retired: TrafficCounters = newTrafficCounters();
  private readonly endedPromise: Promise<BridgeError | undefined>;
  private resolveEnded!: (err: BridgeError | undefined) => void;
  private readonly abort = new AbortController();
  private readonly refusedWarning: (label: string) => void;

  /** Start the first session (its failure is the caller's, at once: no retry), then carry. */
  static async start(options: ReplacingCarrierOptions): Promise<ReplacingCarrier> {
    const session = options.firstSession ?? (await options.startSession());
    const first = await SessionCarrier.over(session, { destination: options.destination, ...(options.logger ? { logger: options.logger } : {}) });
    return new ReplacingCarrier(options, first);
  }

  private constructor(options: ReplacingCarrierOptions, first: SessionCarrier) {
    super();
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.retry = new RetryPolicy({ budgetMs: options.budgetMs, stableMs: REPLACEMENT_STABLE_MS });
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
    this.refusedWarning = rateLimited(5_000, (label: string, suppressed: number) =>
      this.logger.warn({ connection: label, ...(suppressed > 0 ? { suppressed } : {}) }, `too many connections waiting for the new session; refused ${label}${suppressed > 0 ? ` and ${suppressed} more` : ''}`),
    );
    this.current = first;
    this.adopt(first);
  }

  get mode(): 'multiplexed' | 'basic' {
    return this.current.mode;
  }

  get sessionIds(): readonly string[] {
    return this.current.sessionIds;
  }

  get counters(): TrafficCounters {
    const live = this.current.counters;
    return {
      connectionsOpened: this.retired.connectionsOpened + live.connectionsOpened,
      connectionsActive: live.connectionsActive,
      bytesToRemote: this.retired.bytesToRemote + live.bytesToRemote,
      bytesFromRemote: this.retired.bytesFromRemote + live.bytesFromRemote,
    };
  }

  closed(): Promise<BridgeError | undefined> {
    return this.endedPromise;
  }

  sessionCounters(): Array<{ sessionId: string; counters: TrafficCounters }> {
    return this.current.sessionCounters();
  }

  load(): CarrierLoad {
    const live = this.current.load();
    return { ...live, ready: this.state === 'open' && live.ready, connections: live.connections + this.waiting.length };
  }

  carry(connection: LocalConnection): void {
    switch (this.state) {
      case 'open':
        this.current.carry(connection);
        return;
      case 'replacing':
        if (this.waiting.length >= MAX_WAITING_CONNECTIONS) {
          this.refusedWarning(connection.label);
          connection.socket.destroy();
          return;
        }
        connection.socket.pause();
        this.waiting.push(connection);
        connection.socket.once('close', () => {
          const i = this.waiting.indexOf(connection);
          if (i >= 0) this.waiting.splice(i, 1);
        });
        return;
      case 'closing':
      case 'closed':
        connection.socket.destroy();
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.transition('closing');
    await this.current.close();
    this.transition('closed');
  }

  private transition(next: ReplacingState, error?: BridgeError): void {
    if (this.state === 'closed' || this.state === next) return;
    this.state = next;
    switch (next) {
      case 'open':
        for (const connection of this.waiting.splice(0)) {
          connection.socket.resume();
          this.current.carry(connection);
        }
        return;
      case 'replacing':
        void this.replace(error);
        return;
      case 'closing':
        this.abort.abort();
        return;
      case 'closed':
        this.abort.abort();
        for (const connection of this.waiting.splice(0)) connection.socket.destroy();
        this.resolveEnded(error);
        return;
    }
  }

  /** Follow one session: its statuses, and what its end means. */
  private adopt(carrier: SessionCarrier): void {
    carrier.on('status', (status: SessionStatus) => this.emit('status', status));
    const onSessionEnd = (err: BridgeError | undefined): 'drain' | 'reset' => (this.willReplace(err) ? 'reset' : 'drain');
    carrier.setEndOfSession(onSessionEnd);
    void carrier.closed().then((err) => {
      if (carrier !== this.current) return;
      if (this.state === 'closing' || this.state === 'closed') return;
      if (this.willReplace(err)) this.transition('replacing', err);
      else this.transition('closed', err);
    });
  }

  private willReplace(err: BridgeError | undefined): boolean {
    return this.options.reconnect && this.state === 'open' && sessionEndVerdict(err) === 'replace';
  }

  /** Start sessions until one opens, within the budget; a final failure (or the budget) ends the carrier. */
  private async replace(endError: BridgeError | undefined): Promise<void> {
    const old = this.current;
    const previousSessionId = old.session.sessionId;
    const lostConnections = old.openConnections;
    this.retry.lost();
    let lastError: unknown = endError;
    const reason = endError?.message ?? 'the session ended';
    this.logger.warn({ event: 'session-ended', sessionId: previousSessionId, reason }, `session ${previousSessionId} ended (${reason}); starting a new one behind the same listener`);
    for (;;) {
      if (this.state !== 'replacing') return;
      const next = this.retry.nextAttempt();
      if (next === undefined) break;
      this.emit('status', { type: 'replacing', sessionId: previousSessionId, attempt: next.attempt, delayMs: next.delayMs, reason } satisfies SessionStatus);
      if (next.delayMs > 0) {
        try {
          await sleep(next.delayMs, undefined, { signal: this.abort.signal });
        } catch {
          return;
        }
      }
      if (this.state !== 'replacing') return;
      this.retry.attempting();
      let session: BridgeSession | undefined;
      try {
        // Aborted by close(): a start in progress is terminated, not left open on the service.
        session = await this.options.startSession(this.abort.signal);
        if (this.state !== 'replacing') {
          await session.terminate();
          return;
        }
        const carrier = await SessionCarrier.over(session, { destination: this.options.destination, logger: this.logger });
        this.retired.connectionsOpened += old.counters.connectionsOpened;
        this.retired.bytesToRemote += old.counters.bytesToRemote;
        this.retired.bytesFromRemote += old.counters.bytesFromRemote;
        this.current = carrier;
        const downtimeMs = this.retry.downtimeMs();
        this.retry.succeeded();
        this.adopt(carrier);
        this.emit('status', { type: 'replaced', sessionId: session.sessionId, previousSessionId, downtimeMs, attempts: next.attempt, lostConnections } satisfies SessionStatus);
        this.transition('open');
        // The new session may have ended already (closed right behind its handshake): its closed() handler decides.
        return;
      } catch (err) {
        lastError = err;
        if (startFailureVerdict(err) === 'final') {
          this.transition('closed', err instanceof BridgeError ? err : new BridgeError(ErrorCode.SERVICE_ERROR, (err as Error).message, { cause: err }));
          return;
        }
        this.logger.debug({ attempt: next.attempt, err: (err as Error).message }, 'starting a new session failed');
      }
    }
    const last = lastError instanceof BridgeError ? lastError : undefined;
    const budget = Math.round(this.options.budgetMs / 1000);
    this.transition(
      'closed',
      new BridgeError(last?.code ?? ErrorCode.SESSION_TERMINATED, `session ${previousSessionId} ended, and no new session could be started within ${budget} s (--resume-timeout)${last ? `: ${last.message}` : ''}`, { cause: lastError }),
    );
  }
}

import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BridgeError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { RetryPolicy, startFailureVerdict, type SessionStatus } from '../session/index.js';
import type { Carrier, CarrierLoad, LocalConnection } from './carrier.js';
import { newTrafficCounters, type TrafficCounters } from './connection-bridges.js';

/** More sessions than this per tunnel buys nothing but audit-log lines and quota (sessions per account). */
export const MAX_STRIPED_SESSIONS = 16;

export interface StripedCarrierOptions {
  /** How many sessions carry the tunnel. */
  sessions: number;
  /** Start one member (a carrier of one session, replaced on its own when it ends). */
  startMember: (signal: AbortSignal) => Promise<Carrier>;
  /** How long a member that failed to start is retried (--resume-timeout). */
  budgetMs: number;
  logger?: Logger;
}

/*
 * Each member is its own carrier: it resumes and is replaced on its own. A member that ends for good ends the
 * whole tunnel (its error is final: credentials, a bad document, a target gone for longer than the budget).
 */

/**
 * A carrier over several sessions at once: the agent paces each session to ~1 KiB per ms, so connections spread
 * over N sessions move up to N times the bytes. One TCP connection stays on one session (the agent dials one
 * destination connection per stream). A new connection goes to the ready member with the fewest connections,
 * ties broken by the fewest messages in flight.
 */
export class StripedCarrier extends EventEmitter implements Carrier {
  private readonly members: Array<Carrier | undefined>;
  private readonly logger: Logger;
  private readonly options: StripedCarrierOptions;
  private readonly endedPromise: Promise<BridgeError | undefined>;
  private resolveEnded!: (err: BridgeError | undefined) => void;
  private readonly abort = new AbortController();
  private ended = false;
  /** Members started but not yet part of `members` are closed when the carrier closes meanwhile. */
  private readonly starting = new Set<Promise<Carrier>>();

  /**
   * Start every member at once. The first must start (its error is the caller's, at once); the others that fail
   * are retried in the background with backoff, and the tunnel serves with the members it has meanwhile.
   */
  static async start(options: StripedCarrierOptions): Promise<StripedCarrier> {
    const carrier = new StripedCarrier(options);
    const attempts = Array.from({ length: options.sessions }, () => carrier.track(options.startMember(carrier.abort.signal)));
    try {
      carrier.adopt(0, await attempts[0]!);
    } catch (err) {
      carrier.ended = true;
      carrier.abort.abort();
      await Promise.all(attempts.slice(1).map((a) => a.then((m) => m.close(), () => {})));
      throw err;
    }
    // Ready once every member has had its first try (each bounded by the start's own deadlines).
    const rest = await Promise.allSettled(attempts.slice(1));
    rest.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') carrier.adopt(i + 1, outcome.value);
      else void carrier.retryMember(i + 1, outcome.reason);
    });
    return carrier;
  }

  private constructor(options: StripedCarrierOptions) {
    super();
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.members = new Array<Carrier | undefined>(options.sessions).fill(undefined);
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  private get live(): Carrier[] {
    return this.members.filter((m): m is Carrier => m !== undefined);
  }

  get mode(): 'multiplexed' | 'basic' {
    return this.live[0]?.mode ?? 'multiplexed';
  }

  get sessionIds(): readonly string[] {
    return this.live.flatMap((m) => m.sessionIds);
  }

  get counters(): TrafficCounters {
    const total = newTrafficCounters();
    for (const m of this.live) {
      const c = m.counters;
      total.connectionsOpened += c.connectionsOpened;
      total.connectionsActive += c.connectionsActive;
      total.bytesToRemote += c.bytesToRemote;
      total.bytesFromRemote += c.bytesFromRemote;
    }
    return total;
  }

  sessionCounters(): Array<{ sessionId: string; counters: TrafficCounters }> {
    return this.live.flatMap((m) => m.sessionCounters());
  }

  load(): CarrierLoad {
    const loads = this.live.map((m) => m.load());
    return {
      ready: loads.some((l) => l.ready),
      connections: loads.reduce((n, l) => n + l.connections, 0),
      messagesInFlight: loads.reduce((n, l) => n + l.messagesInFlight, 0),
    };
  }

  closed(): Promise<BridgeError | undefined> {
    return this.endedPromise;
  }

  carry(connection: LocalConnection): void {
    const member = this.pick();
    if (member === undefined || this.ended) {
      connection.socket.destroy();
      return;
    }
    member.carry(connection);
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.abort.abort();
    await Promise.all([...this.live.map((m) => m.close()), ...[...this.starting].map((s) => s.then((m) => m.close(), () => {}))]);
    this.resolveEnded(undefined);
  }

  /** The ready member with the fewest connections (then the fewest messages in flight); else any member (it queues). */
  private pick(): Carrier | undefined {
    let best: Carrier | undefined;
    let bestLoad: CarrierLoad | undefined;
    for (const member of this.live) {
      const load = member.load();
      if (bestLoad === undefined || better(load, bestLoad)) {
        best = member;
        bestLoad = load;
      }
    }
    return best;
  }

  private track(start: Promise<Carrier>): Promise<Carrier> {
    this.starting.add(start);
    const untrack = (): void => void this.starting.delete(start);
    start.then(untrack, untrack);
    return start;
  }

  private adopt(index: number, member: Carrier): void {
    if (this.ended) {
      void member.close();
      return;
    }
    this.members[index] = member;
    member.on('status', (status: SessionStatus) => this.emit('status', status));
    void member.closed().then((err) => {
      if (this.ended) return;
      // A member ends for good only on a final error (or the budget): the tunnel cannot keep its promise.
      this.logger.debug({ member: index, err: err?.message }, 'a striped session ended for good; closing the others');
      void this.finish(err);
    });
  }

  private async finish(err: BridgeError | undefined): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.abort.abort();
    await Promise.all(this.live.map((m) => m.close().catch(() => {})));
    this.resolveEnded(err);
  }

  /** A member that failed to start: retried with backoff within the budget, then given up (the others serve). */
  private async retryMember(index: number, firstError: unknown): Promise<void> {
    const retry = new RetryPolicy({ budgetMs: this.options.budgetMs });
    retry.lost();
    let lastError = firstError;
    retry.attempting();
    for (;;) {
      if (this.ended) return;
      if (startFailureVerdict(lastError) === 'final') break;
      const next = retry.nextAttempt();
      if (next === undefined) break;
      this.logger.debug({ member: index, attempt: next.attempt, delayMs: next.delayMs, err: (lastError as Error).message }, 'starting a striped session failed; retrying');
      try {
        await sleep(next.delayMs, undefined, { signal: this.abort.signal });
      } catch {
        return;
      }
      retry.attempting();
      try {
        this.adopt(index, await this.track(this.options.startMember(this.abort.signal)));
        return;
      } catch (err) {
        lastError = err;
      }
    }
    this.logger.warn(
      { member: index, err: (lastError as Error).message },
      `could not start session ${index + 1} of ${this.options.sessions} for the tunnel; serving with ${this.live.length} (${(lastError as Error).message})`,
    );
  }
}

function better(a: CarrierLoad, b: CarrierLoad): boolean {
  if (a.ready !== b.ready) return a.ready;
  if (a.connections !== b.connections) return a.connections < b.connections;
  return a.messagesInFlight < b.messagesInFlight;
}

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { BridgeError, ErrorCode } from '../errors.js';
import { newTrafficCounters, type SessionTraffic } from './gateway/gateway.js';
import { parseHostPort, type SandboxConfig, type SessionTypeProperties, type TargetConfig } from './config.js';

/*
 * A session's life in the sandbox (one `state` field; transitions only in the methods below):
 *
 *   start() ──> pending ──markConnected──> connected <──markConnected── disconnected
 *                  │                           │ ──markDisconnected──────────> │
 *                  │                           │                               │
 *                  └───────────── terminate(reason) / expire() ────────────────┴──> terminated
 *
 * pending and disconnected sessions run the expiry clock (sessionExpiryMs): when it fires, the session
 * is terminated with reason 'expired'. resume() issues a new token in any state but terminated.
 */
export type SessionState = 'pending' | 'connected' | 'disconnected' | 'terminated';

/** The reason an expired session carries (clock or `expire()`). */
export const EXPIRED_REASON = 'expired';

/**
 * Per-session counters: a plain mutable object. The registry counts `connections`, `reconnects` and
 * `signedUpgrades`; the API counts `resumeSessionCalls`; the gateway increments the rest as traffic flows.
 */
export interface SessionCounters extends SessionTraffic {
  /** ResumeSession calls naming this session, including failed (fault-injected) and token-less ones. */
  resumeSessionCalls: number;
  /** Data-channel upgrades that carried a valid SigV4 signature (service ssmmessages), counted at the HTTP upgrade. */
  signedUpgrades: number;
}

export function newSessionCounters(): SessionCounters {
  return { resumeSessionCalls: 0, signedUpgrades: 0, ...newTrafficCounters() };
}

export interface SessionRecord {
  /** `<prefix>-<17 hex digits>`, like the service's `<IAM user>-<17 hex>`; 1–96 characters. */
  readonly sessionId: string;
  readonly targetId: string;
  readonly target: TargetConfig;
  readonly documentName: string;
  readonly parameters: Readonly<Record<string, readonly string[]>>;
  /** The resolved session type properties the agent announces (SPEC §4). */
  readonly properties: SessionTypeProperties;
  state: SessionState;
  /** The one token that opens the data channel now; each StartSession/ResumeSession issues a new one. */
  token: string;
  readonly createdAtMs: number;
  /** When the current connection opened. */
  connectedAtMs?: number;
  /** When the client went away; cleared when it comes back. */
  disconnectedAtMs?: number;
  terminatedAtMs?: number;
  /** Why it ended: 'TerminateSession API', 'expired', 'idle timeout', or what the gateway/agent reports. */
  terminatedReason?: string;
  /** The Output of the channel_closed the client is sent, when it is not the reason (idle timeout, agent end). */
  channelClosedOutput?: string;
  readonly counters: SessionCounters;
}

/** What StartSession hands the registry once the request is valid and the document resolved. */
export interface StartSessionRecordInput {
  targetId: string;
  documentName: string;
  parameters: Readonly<Record<string, readonly string[]>>;
  properties: SessionTypeProperties;
}

/** A session as the control API shows it: the record without its token. */
export interface SessionSummary {
  sessionId: string;
  target: string;
  documentName: string;
  parameters: Readonly<Record<string, readonly string[]>>;
  properties: SessionTypeProperties;
  state: SessionState;
  createdAtMs: number;
  connectedAtMs?: number;
  disconnectedAtMs?: number;
  terminatedAtMs?: number;
  terminatedReason?: string;
  channelClosedOutput?: string;
  counters: SessionCounters;
}

export interface SessionRegistryOptions {
  /** Clock for the record timestamps (not the expiry timers). Default Date.now. */
  now?: () => number;
  /** The part before the hex digits of session ids; the service uses the caller's IAM user name. Default 'sandbox'. */
  sessionIdPrefix?: string;
}

/** Events: each carries the record, after its change. */
export interface SessionRegistryEvents {
  started: [record: SessionRecord];
  resumed: [record: SessionRecord];
  connected: [record: SessionRecord];
  disconnected: [record: SessionRecord];
  /** Ended for any reason (TerminateSession, expiry, the gateway or agent ending it): close its socket. */
  terminated: [record: SessionRecord];
}

/** The sandbox's sessions, shared by the SSM API (start, resume, terminate) and the gateway (tokens, state, counters). */
export class SessionRegistry extends EventEmitter<SessionRegistryEvents> {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  /** StartSession calls per target id (any id a well-formed request named, failed calls too). */
  private readonly startCalls = new Map<string, number>();
  private readonly config: SandboxConfig;
  private readonly now: () => number;
  private readonly sessionIdPrefix: string;

  constructor(config: SandboxConfig, options: SessionRegistryOptions = {}) {
    super();
    this.config = config;
    this.now = options.now ?? Date.now;
    const prefix = options.sessionIdPrefix ?? 'sandbox';
    if (!/^[A-Za-z0-9_.@+=,-]{1,78}$/.test(prefix)) {
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `session id prefix ${JSON.stringify(prefix)} must be 1 to 78 letters, digits or _.@+=,-`);
    }
    this.sessionIdPrefix = prefix;
  }

  /** A new pending session with a fresh token; its expiry clock runs until it connects. */
  start(input: StartSessionRecordInput): SessionRecord {
    const target = this.config.targets[input.targetId];
    if (target === undefined) throw new BridgeError(ErrorCode.TARGET_NOT_CONNECTED, `${input.targetId} is not a target of this sandbox`);
    let sessionId: string;
    do sessionId = `${this.sessionIdPrefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
    while (this.sessions.has(sessionId));
    const record: SessionRecord = {
      sessionId,
      targetId: input.targetId,
      target,
      documentName: input.documentName,
      parameters: input.parameters,
      properties: input.properties,
      state: 'pending',
      token: newToken(),
      createdAtMs: this.now(),
      counters: newSessionCounters(),
    };
    this.sessions.set(sessionId, record);
    this.armExpiry(record);
    this.emit('started', record);
    return record;
  }

  /** A well-formed StartSession request named this target (counted before faults, documents and connectivity). */
  countStartSession(targetId: string): void {
    this.startCalls.set(targetId, (this.startCalls.get(targetId) ?? 0) + 1);
  }

  /** StartSession calls that named this target so far. */
  startSessionCalls(targetId: string): number {
    return this.startCalls.get(targetId) ?? 0;
  }

  /** The configured targets (their `connected` is live). */
  targets(): Readonly<Record<string, TargetConfig>> {
    return this.config.targets;
  }

  /** Whether StartSession may start a session on this target (a configured target whose agent is online). */
  isTargetConnected(targetId: string): boolean {
    return this.config.targets[targetId]?.connected === true;
  }

  /**
   * Take a target's agent offline (false) or back online (true): StartSession answers TargetNotConnected while
   * it is offline; its live sessions are left alone (docs/sandbox.md). Writes the config's `connected`, so
   * `sandbox.config` shows it. False for an unknown target.
   */
  setTargetConnected(targetId: string, connected: boolean): boolean {
    const target = this.config.targets[targetId];
    if (target === undefined) return false;
    target.connected = connected;
    return true;
  }

  get(sessionId: string): SessionRecord | undefined {
    return this.sessions.get(sessionId);
  }

  /** Every session, terminated ones included (they stay, so ResumeSession can answer "no token"). */
  list(): SessionRecord[] {
    return [...this.sessions.values()];
  }

  /** The record when `token` is the session's current token and the session is not terminated. */
  checkToken(sessionId: string, token: string): SessionRecord | undefined {
    const record = this.sessions.get(sessionId);
    if (record === undefined || record.state === 'terminated') return undefined;
    const a = Buffer.from(record.token);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b) ? record : undefined;
  }

  /**
   * Issue a new token for a live session (pending, connected or disconnected); the previous token stops
   * working. Throws BridgeError `SESSION_TERMINATED` for a terminated session, `INVALID_ARGUMENT` for an
   * unknown id.
   */
  resume(sessionId: string): SessionRecord {
    const record = this.sessions.get(sessionId);
    if (record === undefined) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `no session ${sessionId}`);
    if (record.state === 'terminated') {
      throw new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${sessionId} is terminated (${record.terminatedReason ?? 'no reason'})`);
    }
    record.token = newToken();
    this.emit('resumed', record);
    return record;
  }

  /** A data channel with a valid token joined: the session is connected; its expiry clock stops. */
  markConnected(sessionId: string): void {
    const record = this.sessions.get(sessionId);
    if (record === undefined || record.state === 'terminated') return;
    this.clearExpiry(sessionId);
    record.state = 'connected';
    record.connectedAtMs = this.now();
    delete record.disconnectedAtMs;
    record.counters.connections++;
    if (record.counters.connections > 1) record.counters.reconnects++;
    this.emit('connected', record);
  }

  /** A data-channel upgrade for this session carried a signature that verified (before its token is checked). */
  countSignedUpgrade(sessionId: string): void {
    const record = this.sessions.get(sessionId);
    if (record !== undefined) record.counters.signedUpgrades++;
  }

  /** The client's WebSocket went away: the session waits `sessionExpiryMs` for a resume. */
  markDisconnected(sessionId: string): void {
    const record = this.sessions.get(sessionId);
    if (record === undefined || record.state !== 'connected') return;
    record.state = 'disconnected';
    record.disconnectedAtMs = this.now();
    this.armExpiry(record);
    this.emit('disconnected', record);
  }

  /** Fault injection: expire the session now, whatever its state. False when unknown or already over. */
  expire(sessionId: string): boolean {
    return this.terminate(sessionId, EXPIRED_REASON);
  }

  /**
   * End a session; idempotent. Emits `terminated` the first time; false when unknown or already over.
   * `channelClosedOutput`: what the client's channel_closed says, when not the reason itself.
   */
  terminate(sessionId: string, reason: string, channelClosedOutput?: string): boolean {
    const record = this.sessions.get(sessionId);
    if (record === undefined || record.state === 'terminated') return false;
    this.clearExpiry(sessionId);
    record.state = 'terminated';
    record.terminatedAtMs = this.now();
    record.terminatedReason = reason;
    if (channelClosedOutput !== undefined && channelClosedOutput !== reason) record.channelClosedOutput = channelClosedOutput;
    this.emit('terminated', record);
    return true;
  }

  /**
   * Where the agent's dial of `host:port` lands: the node's own `ports` for localhost (and for a session
   * without `host`), else its `remoteHosts`. Undefined: nothing listens there (the dial is refused).
   */
  resolveDestination(record: SessionRecord, host: string | undefined, port: string | number): { host: string; port: number } | undefined {
    const h = (host ?? 'localhost').toLowerCase();
    const p = String(port);
    const local = h === 'localhost' || h === '127.0.0.1' || h === '::1' || h === '[::1]' ? record.target.ports[p] : record.target.remoteHosts[h]?.[p];
    return local === undefined ? undefined : parseHostPort(local);
  }

  /** Stop every expiry timer (the sandbox is shutting down); sessions keep their state. */
  close(): void {
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  private armExpiry(record: SessionRecord): void {
    this.clearExpiry(record.sessionId);
    const timer = setTimeout(() => {
      this.expiryTimers.delete(record.sessionId);
      this.terminate(record.sessionId, EXPIRED_REASON);
    }, this.config.sessionExpiryMs);
    timer.unref();
    this.expiryTimers.set(record.sessionId, timer);
  }

  private clearExpiry(sessionId: string): void {
    const timer = this.expiryTimers.get(sessionId);
    if (timer !== undefined) clearTimeout(timer);
    this.expiryTimers.delete(sessionId);
  }
}

/** The control API's view of a session: everything but the token. */
export function describeSession(record: SessionRecord): SessionSummary {
  const { sessionId, targetId, documentName, parameters, properties, state, createdAtMs, connectedAtMs, disconnectedAtMs, terminatedAtMs, terminatedReason, channelClosedOutput, counters } = record;
  return {
    sessionId,
    target: targetId,
    documentName,
    parameters,
    properties,
    state,
    createdAtMs,
    ...(connectedAtMs !== undefined ? { connectedAtMs } : {}),
    ...(disconnectedAtMs !== undefined ? { disconnectedAtMs } : {}),
    ...(terminatedAtMs !== undefined ? { terminatedAtMs } : {}),
    ...(terminatedReason !== undefined ? { terminatedReason } : {}),
    ...(channelClosedOutput !== undefined ? { channelClosedOutput } : {}),
    counters: { ...counters },
  };
}

/** 64 random base64url characters: well inside TokenValue's 0–300. */
function newToken(): string {
  return randomBytes(48).toString('base64url');
}

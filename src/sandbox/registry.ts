import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { PortSessionProperties } from '../protocol/index.js';
import type { SandboxConfig, TargetConfig } from './config.js';

export type SessionState = 'pending' | 'connected' | 'disconnected' | 'terminated';

export interface SessionRecord {
  sessionId: string;
  targetId: string;
  target: TargetConfig;
  documentName: string;
  parameters: Record<string, string[]>;
  properties: PortSessionProperties;
  state: SessionState;
  /** The one token that opens the data channel now; each Start/Resume issues a new one. */
  token: string;
  createdAtMs: number;
  disconnectedAtMs?: number;
  terminatedReason?: string;
  counters: { resumeSessionCalls: number; connections: number };
}

/**
 * The sandbox's sessions. Events: `terminated` (record) whenever a session ends for any reason
 * (TerminateSession, expiry, the agent ending it).
 */
export class SessionRegistry extends EventEmitter {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  private readonly config: SandboxConfig;

  constructor(config: SandboxConfig) {
    super();
    this.config = config;
  }

  start(input: { targetId: string; documentName: string; parameters: Record<string, string[]>; properties: PortSessionProperties; user?: string }): SessionRecord {
    const target = this.config.targets[input.targetId];
    if (!target) throw new Error(`unknown target ${input.targetId}`);
    // Real ids look like "<iam user>-<17 hex digits>".
    const sessionId = `${input.user ?? 'sandbox'}-${randomBytes(9).toString('hex').slice(0, 17)}`;
    const record: SessionRecord = {
      sessionId,
      targetId: input.targetId,
      target,
      documentName: input.documentName,
      parameters: input.parameters,
      properties: input.properties,
      state: 'pending',
      token: newToken(),
      createdAtMs: Date.now(),
      counters: { resumeSessionCalls: 0, connections: 0 },
    };
    this.sessions.set(sessionId, record);
    return record;
  }

  get(sessionId: string): SessionRecord | undefined {
    return this.sessions.get(sessionId);
  }

  list(): SessionRecord[] {
    return [...this.sessions.values()];
  }

  /** The record when `token` is current and the session is live. */
  checkToken(sessionId: string, token: string): SessionRecord | undefined {
    const record = this.sessions.get(sessionId);
    if (!record || record.state === 'terminated' || record.token !== token) return undefined;
    return record;
  }

  /** A new token for a live session; undefined for a terminated one (the service returns no token). */
  resume(sessionId: string): SessionRecord | undefined {
    const record = this.sessions.get(sessionId);
    if (!record) return undefined;
    record.counters.resumeSessionCalls++;
    if (record.state === 'terminated') return record;
    record.token = newToken();
    return record;
  }

  markConnected(sessionId: string): void {
    const record = this.sessions.get(sessionId);
    if (!record || record.state === 'terminated') return;
    record.state = 'connected';
    record.counters.connections++;
    delete record.disconnectedAtMs;
    this.clearExpiry(sessionId);
  }

  /** The client is away: the session waits `sessionExpiryMs` for a resume. */
  markDisconnected(sessionId: string): void {
    const record = this.sessions.get(sessionId);
    if (!record || record.state === 'terminated') return;
    record.state = 'disconnected';
    record.disconnectedAtMs = Date.now();
    this.clearExpiry(sessionId);
    const timer = setTimeout(() => this.terminate(sessionId, 'session expired while disconnected'), this.config.sessionExpiryMs);
    timer.unref();
    this.expiryTimers.set(sessionId, timer);
  }

  /** Fault injection: expire now, whatever the state. */
  expire(sessionId: string): boolean {
    return this.terminate(sessionId, 'session expired');
  }

  terminate(sessionId: string, reason: string): boolean {
    const record = this.sessions.get(sessionId);
    if (!record || record.state === 'terminated') return false;
    record.state = 'terminated';
    record.terminatedReason = reason;
    this.clearExpiry(sessionId);
    this.emit('terminated', record);
    return true;
  }

  /** Where the agent's dial of host:port lands: the node's own ports for localhost, else its remote hosts. */
  resolveDestination(record: SessionRecord, host: string, port: string): { host: string; port: number } | undefined {
    const local = host === 'localhost' || host === '127.0.0.1' || host === '::1' ? record.target.ports[port] : record.target.remoteHosts[host]?.[port];
    if (local === undefined) return undefined;
    const i = local.lastIndexOf(':');
    return { host: local.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(local.slice(i + 1)) };
  }

  close(): void {
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
  }

  private clearExpiry(sessionId: string): void {
    const timer = this.expiryTimers.get(sessionId);
    if (timer) clearTimeout(timer);
    this.expiryTimers.delete(sessionId);
  }
}

function newToken(): string {
  return randomBytes(48).toString('base64url');
}

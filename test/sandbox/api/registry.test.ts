import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError, ErrorCode } from '../../../src/errors.js';
import { loadSandboxConfig } from '../../../src/sandbox/config.js';
import { describeSession, SessionRegistry, type SessionRecord } from '../../../src/sandbox/registry.js';
import { waitFor } from '../../helpers/sandbox-api-server.js';

const TARGET = 'i-0123456789abcdef0';
const registries: SessionRegistry[] = [];

afterEach(() => {
  for (const r of registries.splice(0)) r.close();
});

function registry(sessionExpiryMs = 60_000, options: ConstructorParameters<typeof SessionRegistry>[1] = {}): SessionRegistry {
  const config = loadSandboxConfig({
    targets: { [TARGET]: { ports: { '22': '127.0.0.1:2222', '80': '[::1]:8080' }, remoteHosts: { 'db.internal': { '5432': '127.0.0.1:15432' } } } },
    sessionExpiryMs,
  });
  const r = new SessionRegistry(config, options);
  registries.push(r);
  return r;
}

function start(r: SessionRegistry): SessionRecord {
  return r.start({ targetId: TARGET, documentName: 'AWS-StartSSHSession', parameters: {}, properties: { portNumber: '22' } });
}

describe('SessionRegistry', () => {
  it('starts pending sessions with real-looking ids and fresh tokens', () => {
    let now = 1_000;
    const r = registry(60_000, { now: () => now, sessionIdPrefix: 'John-Doe' });
    const started: string[] = [];
    r.on('started', (rec) => started.push(rec.sessionId));
    const a = start(r);
    now = 2_000;
    const b = start(r);
    expect(a.sessionId).toMatch(/^John-Doe-[0-9a-f]{17}$/);
    expect(a.sessionId).not.toBe(b.sessionId);
    expect(a.token).not.toBe(b.token);
    expect(a).toMatchObject({ state: 'pending', createdAtMs: 1_000, targetId: TARGET });
    expect(b.createdAtMs).toBe(2_000);
    expect(started).toEqual([a.sessionId, b.sessionId]);
    expect(r.list()).toEqual([a, b]);
    expect(() => r.start({ targetId: 'i-unknown', documentName: 'AWS-StartSSHSession', parameters: {}, properties: { portNumber: '22' } })).toThrow(BridgeError);
  });

  it('checks tokens: only the current one of a live session', () => {
    const r = registry();
    const s = start(r);
    const first = s.token;
    expect(r.checkToken(s.sessionId, first)).toBe(s);
    expect(r.checkToken(s.sessionId, 'x')).toBeUndefined();
    expect(r.checkToken('nope', first)).toBeUndefined();
    const resumed: string[] = [];
    r.on('resumed', (rec) => resumed.push(rec.token));
    r.resume(s.sessionId);
    expect(resumed).toEqual([s.token]);
    expect(r.checkToken(s.sessionId, first)).toBeUndefined();
    expect(r.checkToken(s.sessionId, s.token)).toBe(s);
    r.terminate(s.sessionId, 'done');
    expect(r.checkToken(s.sessionId, s.token)).toBeUndefined();
  });

  it('refuses to resume terminated and unknown sessions with typed errors', () => {
    const r = registry();
    const s = start(r);
    r.terminate(s.sessionId, 'done');
    expect(() => r.resume(s.sessionId)).toThrow(expect.objectContaining({ code: ErrorCode.SESSION_TERMINATED }));
    expect(() => r.resume('nope')).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('moves through connected / disconnected, counting connections and reconnects', () => {
    let now = 0;
    const r = registry(60_000, { now: () => now });
    const s = start(r);
    const events: string[] = [];
    for (const e of ['connected', 'disconnected', 'terminated'] as const) r.on(e, (rec) => events.push(`${e}:${rec.state}`));
    now = 10;
    r.markConnected(s.sessionId);
    expect(s).toMatchObject({ state: 'connected', connectedAtMs: 10 });
    r.markDisconnected(s.sessionId);
    now = 20;
    r.markDisconnected(s.sessionId); // already disconnected: the clock does not restart
    expect(s).toMatchObject({ state: 'disconnected', disconnectedAtMs: 10 });
    r.markConnected(s.sessionId);
    expect(s.disconnectedAtMs).toBeUndefined();
    expect(s.counters).toMatchObject({ connections: 2, reconnects: 1 });
    expect(r.terminate(s.sessionId, 'agent ended')).toBe(true);
    expect(r.terminate(s.sessionId, 'again')).toBe(false);
    r.markConnected(s.sessionId); // ignored once terminated
    r.markDisconnected(s.sessionId);
    expect(s).toMatchObject({ state: 'terminated', terminatedReason: 'agent ended', terminatedAtMs: 20 });
    expect(events).toEqual(['connected:connected', 'disconnected:disconnected', 'connected:connected', 'terminated:terminated']);
  });

  it('expires pending and disconnected sessions, but not connected ones', async () => {
    const r = registry(100);
    const pending = start(r);
    const connected = start(r);
    const dropped = start(r);
    r.markConnected(connected.sessionId);
    r.markConnected(dropped.sessionId);
    r.markDisconnected(dropped.sessionId);
    const expired: string[] = [];
    r.on('terminated', (rec) => expired.push(rec.sessionId));
    await waitFor(() => expired.length === 2, 3_000, 'two expiries');
    expect(expired.sort()).toEqual([pending.sessionId, dropped.sessionId].sort());
    expect(pending.terminatedReason).toBe('expired');
    await new Promise((res) => setTimeout(res, 150));
    expect(connected.state).toBe('connected');
  });

  it('expire() ends a session now; close() stops every clock', async () => {
    const r = registry(100);
    const a = start(r);
    expect(r.expire(a.sessionId)).toBe(true);
    expect(a).toMatchObject({ state: 'terminated', terminatedReason: 'expired' });
    expect(r.expire(a.sessionId)).toBe(false);
    const b = start(r);
    r.close();
    await new Promise((res) => setTimeout(res, 250));
    expect(b.state).toBe('pending');
  });

  it('resolves the agent dial to the target ports or remote hosts', () => {
    const r = registry();
    const s = start(r);
    expect(r.resolveDestination(s, 'localhost', '22')).toEqual({ host: '127.0.0.1', port: 2222 });
    expect(r.resolveDestination(s, undefined, 80)).toEqual({ host: '::1', port: 8080 });
    expect(r.resolveDestination(s, '127.0.0.1', '22')).toEqual({ host: '127.0.0.1', port: 2222 });
    expect(r.resolveDestination(s, 'DB.Internal', '5432')).toEqual({ host: '127.0.0.1', port: 15432 });
    expect(r.resolveDestination(s, 'db.internal', '22')).toBeUndefined();
    expect(r.resolveDestination(s, 'localhost', '23')).toBeUndefined();
  });

  it('describes a session without its token, counters copied', () => {
    const r = registry();
    const s = start(r);
    s.counters.acksSent = 5;
    const d = describeSession(s);
    expect(d).not.toHaveProperty('token');
    expect(JSON.stringify(d)).not.toContain(s.token);
    expect(d).toMatchObject({ sessionId: s.sessionId, target: TARGET, state: 'pending', counters: { acksSent: 5 } });
    d.counters.acksSent = 6;
    expect(s.counters.acksSent).toBe(5);
  });
});

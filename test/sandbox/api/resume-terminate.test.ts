import { DoesNotExistException, InternalServerError, ResumeSessionCommand, StartSessionCommand, TerminateSessionCommand, ThrottlingException, type SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../../src/sandbox/registry.js';
import { rejectionOf, startSandboxApiServer, waitFor, type SandboxApiServer } from '../../helpers/sandbox-api-server.js';

const TARGET = 'i-0123456789abcdef0';

let api: SandboxApiServer;
let ssm: SSMClient;

beforeEach(async () => {
  api = await startSandboxApiServer({ targets: { [TARGET]: { ports: { '22': '127.0.0.1:2222' } } } });
  ssm = api.ssm();
});

afterEach(async () => {
  await api?.close();
});

async function startSession() {
  return ssm.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' }));
}

describe('ResumeSession', () => {
  it('gives a live session a new token and the same StreamUrl; the old token stops working', async () => {
    const first = await startSession();
    const id = first.SessionId!;
    expect(api.registry.checkToken(id, first.TokenValue!)).toBeDefined();
    // pending, connected and disconnected sessions all resume (the gateway drives these states).
    const tokens = [first.TokenValue!];
    for (const prepare of [() => {}, () => api.registry.markConnected(id), () => api.registry.markDisconnected(id)]) {
      prepare();
      const state = api.registry.get(id)!.state;
      const resumed = await ssm.send(new ResumeSessionCommand({ SessionId: id }));
      expect(resumed.SessionId, state).toBe(id);
      expect(resumed.StreamUrl).toBe(first.StreamUrl);
      expect(tokens).not.toContain(resumed.TokenValue);
      for (const old of tokens) expect(api.registry.checkToken(id, old), `old token in ${state}`).toBeUndefined();
      expect(api.registry.checkToken(id, resumed.TokenValue!)?.sessionId).toBe(id);
      tokens.push(resumed.TokenValue!);
    }
    expect(api.registry.get(id)?.counters.resumeSessionCalls).toBe(3);
  });

  it('gives no token for a terminated session (TerminateSession), nor for an expired one', async () => {
    const a = await startSession();
    await ssm.send(new TerminateSessionCommand({ SessionId: a.SessionId }));
    const ra = await ssm.send(new ResumeSessionCommand({ SessionId: a.SessionId }));
    expect(ra.SessionId).toBe(a.SessionId);
    expect(ra.TokenValue).toBeUndefined();
    expect(ra.StreamUrl).toBeUndefined();
    expect(api.registry.checkToken(a.SessionId!, a.TokenValue!)).toBeUndefined();

    const b = await startSession();
    const expired = await fetch(`${api.endpoint}/_sandbox/sessions/${b.SessionId}/expire`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
    expect(expired.status).toBe(200);
    const rb = await ssm.send(new ResumeSessionCommand({ SessionId: b.SessionId }));
    expect(rb).toMatchObject({ SessionId: b.SessionId });
    expect(rb.TokenValue).toBeUndefined();
    expect(api.registry.get(b.SessionId!)).toMatchObject({ state: 'terminated', terminatedReason: 'expired' });
    expect(api.registry.get(b.SessionId!)?.counters.resumeSessionCalls).toBe(1);
  });

  it('expires a disconnected session after sessionExpiryMs, then gives no token', async () => {
    const short = await startSandboxApiServer({ targets: { [TARGET]: {} }, sessionExpiryMs: 150 });
    try {
      const client = short.ssm();
      const s = await client.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' }));
      const id = s.SessionId!;
      short.registry.markConnected(id);
      await new Promise((r) => setTimeout(r, 300)); // connected: no clock runs
      expect(short.registry.get(id)?.state).toBe('connected');
      short.registry.markDisconnected(id);
      await waitFor(() => short.registry.get(id)?.state === 'terminated', 3_000, 'expiry');
      expect(short.registry.get(id)?.terminatedReason).toBe('expired');
      expect((await client.send(new ResumeSessionCommand({ SessionId: id }))).TokenValue).toBeUndefined();
    } finally {
      await short.close();
    }
  });

  it('answers DoesNotExistException for an unknown session, ValidationException for a bad id', async () => {
    const err = await rejectionOf(ssm.send(new ResumeSessionCommand({ SessionId: 'sandbox-00000000000000000' })));
    expect(err).toBeInstanceOf(DoesNotExistException);
    expect(err.message).toBe('Session with id sandbox-00000000000000000 does not exist.');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect((await rejectionOf(ssm.send(new ResumeSessionCommand({ SessionId: 's'.repeat(97) })))).name).toBe('ValidationException');
  });

  it('fails the next ResumeSession calls on request: 500 InternalServerError, then 400 throttling, then succeeds', async () => {
    const s = await startSession();
    const id = s.SessionId!;
    const res = await fetch(`${api.endpoint}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ failResumeCount: 1, failResumeWith: 'InternalServerError' }),
      signal: AbortSignal.timeout(5_000),
    });
    expect(res.status).toBe(200);
    const e500 = await rejectionOf(ssm.send(new ResumeSessionCommand({ SessionId: id })));
    expect(e500).toBeInstanceOf(InternalServerError);
    expect(e500.$metadata?.httpStatusCode).toBe(500);
    expect(e500.$fault).toBe('server');

    api.faults.update({ failResumeCount: 1, failResumeWith: 'ThrottlingException' });
    const throttled = await rejectionOf(ssm.send(new ResumeSessionCommand({ SessionId: id })));
    expect(throttled).toBeInstanceOf(ThrottlingException);
    expect(throttled.message).toBe('Rate exceeded');
    expect(throttled.$metadata?.httpStatusCode).toBe(400);

    const ok = await ssm.send(new ResumeSessionCommand({ SessionId: id }));
    expect(ok.TokenValue).toBeTruthy();
    expect(api.faults.settings.failResumeCount).toBe(0);
    expect(api.registry.get(id)?.counters.resumeSessionCalls).toBe(3);
    // The failures did not rotate the token: the one from the successful call is the current one.
    expect(api.registry.checkToken(id, ok.TokenValue!)).toBeDefined();
  });

  it('lets the SDK retry through injected 500s (default retry strategy)', async () => {
    const s = await startSession();
    api.faults.update({ failResumeCount: 2, failResumeWith: 'InternalServerError' });
    const out = await api.ssm(3).send(new ResumeSessionCommand({ SessionId: s.SessionId }));
    expect(out.TokenValue).toBeTruthy();
    expect(out.$metadata.attempts).toBe(3);
    expect(api.registry.get(s.SessionId!)?.counters.resumeSessionCalls).toBe(3);
  });
});

describe('TerminateSession', () => {
  it('terminates once, emits terminated with the reason, and is idempotent (unknown ids too)', async () => {
    const s = await startSession();
    const seen: SessionRecord[] = [];
    api.registry.on('terminated', (r) => seen.push(r));
    for (let i = 0; i < 2; i++) {
      const out = await ssm.send(new TerminateSessionCommand({ SessionId: s.SessionId }));
      expect(out.SessionId).toBe(s.SessionId);
    }
    expect(seen.map((r) => [r.sessionId, r.state, r.terminatedReason])).toEqual([[s.SessionId, 'terminated', 'TerminateSession API']]);
    expect((await ssm.send(new TerminateSessionCommand({ SessionId: 'sandbox-00000000000000000' }))).SessionId).toBe('sandbox-00000000000000000');
    expect((await rejectionOf(ssm.send(new TerminateSessionCommand({ SessionId: '' })))).name).toBe('ValidationException');
  });
});

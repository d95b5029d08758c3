import { StartSessionCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultFaultSettings } from '../../../src/sandbox/faults/index.js';
import type { SessionSummary } from '../../../src/sandbox/registry.js';
import { rawRequest, startSandboxApiServer, type SandboxApiServer } from '../../helpers/sandbox-api-server.js';

const TARGET = 'i-0123456789abcdef0';

let api: SandboxApiServer;
let ssm: SSMClient;
let traffic: Record<string, { messagesToClient: number; connections: number }>;

beforeEach(async () => {
  traffic = {};
  api = await startSandboxApiServer({ targets: { [TARGET]: {} } }, { seed: 7, control: { traffic: (id) => traffic[id] } });
  ssm = api.ssm();
});

afterEach(async () => {
  await api?.close();
});

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${api.endpoint}/_sandbox/${path}`, {
    method,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

async function startSession(): Promise<string> {
  const out = await ssm.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartPortForwardingSession', Parameters: { portNumber: ['5432'] } }));
  return out.SessionId!;
}

describe('control API: sessions', () => {
  it('lists sessions with state and counters, never the token', async () => {
    const a = await startSession();
    const b = await startSession();
    api.registry.markConnected(b);
    traffic[b] = { messagesToClient: 12, connections: 99 };
    const list = await control('GET', 'sessions');
    expect(list.status).toBe(200);
    const sessions = list.body as SessionSummary[];
    expect(sessions.map((s) => [s.sessionId, s.target, s.state])).toEqual([
      [a, TARGET, 'pending'],
      [b, TARGET, 'connected'],
    ]);
    expect(JSON.stringify(list.body)).not.toContain(api.registry.get(a)!.token);
    expect(sessions[0]).toMatchObject({ documentName: 'AWS-StartPortForwardingSession', parameters: { portNumber: ['5432'] }, properties: { portNumber: '5432', type: 'LocalPortForwarding', localPortNumber: '0' } });
    expect(sessions[0]!.counters).toMatchObject({ resumeSessionCalls: 0, connections: 0, messagesToClient: 0 });
    // Live traffic merges in; the registry keeps its own connection count.
    expect(sessions[1]!.counters).toMatchObject({ connections: 1, reconnects: 0, messagesToClient: 12 });
    const one = await control('GET', `sessions/${a}`);
    expect(one.body).toEqual(sessions[0]);
    const missing = await control('GET', 'sessions/sandbox-00000000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('SessionNotFound');
  });

  it('expires and terminates sessions, idempotently', async () => {
    const a = await startSession();
    const b = await startSession();
    const expired = await control('POST', `sessions/${a}/expire`);
    expect(expired.status).toBe(200);
    expect(expired.body).toMatchObject({ sessionId: a, state: 'terminated', terminatedReason: 'expired' });
    expect((await control('POST', `sessions/${a}/terminate`)).body.terminatedReason).toBe('expired');
    const terminated = await control('POST', `sessions/${b}/terminate`);
    expect(terminated.body).toMatchObject({ state: 'terminated', terminatedReason: 'terminated through the sandbox control API' });
    expect(terminated.body.terminatedAtMs).toBeGreaterThan(0);
    expect((await control('POST', 'sessions/sandbox-00000000000000000/expire')).status).toBe(404);
  });

  it('asks the gateway to drop a live session (dropRequested), and refuses for a terminated one', async () => {
    const id = await startSession();
    const requested: string[] = [];
    api.faults.on('dropRequested', (sessionId) => requested.push(sessionId));
    const dropped = await control('POST', `sessions/${id}/drop`);
    expect(dropped.status).toBe(202);
    expect(requested).toEqual([id]);
    expect(api.registry.get(id)?.state).toBe('pending');
    api.registry.terminate(id, 'test');
    const again = await control('POST', `sessions/${id}/drop`);
    expect(again.status).toBe(409);
    expect(requested).toEqual([id]);
  });

  it('answers 405 with Allow for a wrong method and 404 for unknown routes', async () => {
    const id = await startSession();
    const wrong = await control('GET', `sessions/${id}/terminate`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await control('DELETE', 'sessions')).status).toBe(405);
    expect((await control('GET', 'nothing-here')).status).toBe(404);
    expect((await control('POST', `sessions/${id}/explode`)).status).toBe(404);
  });
});

describe('control API: faults', () => {
  it('shows the defaults (all off) and the seed', async () => {
    const res = await control('GET', 'faults');
    expect(res.body).toEqual({ ...JSON.parse(JSON.stringify(defaultFaultSettings())), seed: 7 });
  });

  it('merges valid settings and validates every field, all or nothing', async () => {
    const ok = await control('POST', 'faults', { dropRate: 0.25, closeAfterMessages: 10, refuseDestination: true, failResumeCount: 2, failResumeWith: 'ThrottlingException', seed: 42 });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ dropRate: 0.25, closeAfterMessages: 10, refuseDestination: true, failResumeCount: 2, failResumeWith: 'ThrottlingException', seed: 42 });
    expect(api.faults.settings.dropRate).toBe(0.25);
    const bad: Array<[unknown, RegExp]> = [
      [{ dropRate: 2 }, /faults\.dropRate must be a number from 0 to 1/],
      [{ duplicateRate: '0.1' }, /faults\.duplicateRate/],
      [{ delayMs: -1 }, /faults\.delayMs must be a whole number/],
      [{ corruptDigestNext: 1.5 }, /faults\.corruptDigestNext/],
      [{ closeEveryMs: 'soon' }, /faults\.closeEveryMs/],
      [{ refuseDestination: 1 }, /faults\.refuseDestination must be true or false/],
      [{ failResumeWith: 'AccessDenied' }, /faults\.failResumeWith/],
      [{ seed: -3 }, /faults\.seed/],
      [{ explode: true }, /faults\.explode is not a known fault/],
      [{ reorderRate: 0.5, dropRate: 7 }, /dropRate/],
      [[1], /JSON object/],
    ];
    for (const [body, message] of bad) {
      const res = await control('POST', 'faults', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.message).toMatch(message);
    }
    // Nothing of a rejected patch applied.
    expect(api.faults.settings.reorderRate).toBe(0);
    const notJson = await control('POST', 'faults', '{"dropRate":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toBe('SerializationException');
  });

  it('turns a close* fault off with null or 0, and resets everything with DELETE', async () => {
    await control('POST', 'faults', { closeAfterBytes: 1000, closeEveryMs: 50, delayRate: 1, delayMs: 20 });
    const off = await control('POST', 'faults', { closeAfterBytes: null, closeEveryMs: 0 });
    expect(off.body.closeAfterBytes).toBeUndefined();
    expect(api.faults.settings.closeEveryMs).toBeUndefined();
    expect(off.body.delayMs).toBe(20);
    const reset = await control('DELETE', 'faults');
    expect(reset.body).toMatchObject({ delayRate: 0, delayMs: 0 });
    expect(api.faults.settings).toEqual(defaultFaultSettings());
  });

  it('does not route /_sandbox/ paths to the SSM API', async () => {
    const res = await rawRequest(api.port, { method: 'GET', path: '/_sandbox/faults' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
  });
});

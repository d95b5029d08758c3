import { AccessDeniedException, InternalServerError, StartSessionCommand, TargetNotConnected, ThrottlingException, type SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultState } from '../../../src/sandbox/faults/index.js';
import { rawRequest, rejectionOf, ssmHeaders, startSandboxApiServer, type SandboxApiServer } from '../../helpers/sandbox-api-server.js';

const TARGET = 'i-0123456789abcdef0';
const OTHER = 'i-0fedcba9876543210';

let api: SandboxApiServer;
let ssm: SSMClient;

beforeEach(async () => {
  api = await startSandboxApiServer({ targets: { [TARGET]: {}, [OTHER]: {} } });
  ssm = api.ssm();
});

afterEach(async () => {
  await api?.close();
});

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api.endpoint}/_sandbox/${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: await res.json() };
}

const start = (target = TARGET) => ssm.send(new StartSessionCommand({ Target: target, DocumentName: 'AWS-StartSSHSession' }));

describe('StartSession faults (failStartCount × failStartWith)', () => {
  it('fails the next N calls with ThrottlingException by default, then starts sessions again', async () => {
    const set = await control('POST', 'faults', { failStartCount: 2 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ failStartCount: 2, failStartWith: 'ThrottlingException' });
    for (let i = 0; i < 2; i++) {
      const err = await rejectionOf(start());
      expect(err).toBeInstanceOf(ThrottlingException);
      expect(err.message).toBe('Rate exceeded');
      expect(err.$metadata?.httpStatusCode).toBe(400);
    }
    expect(api.registry.list()).toHaveLength(0);
    const ok = await start();
    expect(ok.TokenValue).toBeTruthy();
    expect(api.faults.settings.failStartCount).toBe(0);
    expect((await control('GET', `targets/${TARGET}`)).body).toMatchObject({ target: TARGET, connected: true, startSessionCalls: 3, sessions: 1 });
  });

  it('answers AccessDeniedException (400) and InternalServerError (500) in the shapes the SDK types', async () => {
    api.faults.update({ failStartCount: 1, failStartWith: 'AccessDeniedException' });
    const denied = await rejectionOf(start());
    expect(denied).toBeInstanceOf(AccessDeniedException);
    expect(denied.$metadata?.httpStatusCode).toBe(400);
    expect(denied.$fault).toBe('client');
    expect(denied.message).toMatch(/is not authorized to perform: ssm:StartSession on resource: arn:aws:ec2:us-east-1:000000000000:instance\/i-0123456789abcdef0/);

    api.faults.update({ failStartCount: 1, failStartWith: 'InternalServerError' });
    const e500 = await rejectionOf(start());
    expect(e500).toBeInstanceOf(InternalServerError);
    expect(e500.$metadata?.httpStatusCode).toBe(500);
    expect(e500.$fault).toBe('server');
  });

  it('sends __type and x-amzn-ErrorType on the wire', async () => {
    api.faults.update({ failStartCount: 1, failStartWith: 'AccessDeniedException' });
    const body = JSON.stringify({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' });
    const res = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', body), body });
    expect(res.status).toBe(400);
    expect(res.headers['x-amzn-errortype']).toBe('AccessDeniedException');
    expect(res.json()).toMatchObject({ __type: 'AccessDeniedException' });
  });

  it('lets the SDK retry through injected throttling (default retry strategy)', async () => {
    api.faults.update({ failStartCount: 2, failStartWith: 'ThrottlingException' });
    const out = await api.ssm(3).send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' }));
    expect(out.SessionId).toBeTruthy();
    expect(out.$metadata.attempts).toBe(3);
    expect(api.registry.startSessionCalls(TARGET)).toBe(3);
  });

  it('validates the fields (400 naming the field) and FaultState.update the same way', async () => {
    for (const [body, message] of [
      [{ failStartCount: -1 }, /faults\.failStartCount must be a whole number/],
      [{ failStartCount: 1.5 }, /faults\.failStartCount/],
      [{ failStartWith: 'AccessDenied' }, /faults\.failStartWith must be "ThrottlingException", "AccessDeniedException" or "InternalServerError"/],
    ] as const) {
      const res = await control('POST', 'faults', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.message).toMatch(message);
    }
    const f = new FaultState();
    expect(() => f.update({ failStartWith: 'Nope' })).toThrow(/failStartWith/);
    f.update({ failStartCount: 2, failStartWith: 'AccessDeniedException' });
    expect([f.takeStartFailure(), f.takeStartFailure(), f.takeStartFailure()]).toEqual(['AccessDeniedException', 'AccessDeniedException', undefined]);
    expect(f.reset()).toMatchObject({ failStartCount: 0, failStartWith: 'ThrottlingException' });
  });

  it('does not touch ResumeSession faults (and the other way round)', async () => {
    api.faults.update({ failResumeCount: 3 });
    expect((await start()).SessionId).toBeTruthy();
    expect(api.faults.settings.failResumeCount).toBe(3);
  });
});

describe('target connectivity (control API /_sandbox/targets)', () => {
  it('lists targets; disconnect makes StartSession answer TargetNotConnected, connect undoes it', async () => {
    const list = await control('GET', 'targets');
    expect(list.status).toBe(200);
    expect(list.body.map((t: { target: string }) => t.target).sort()).toEqual([TARGET, OTHER].sort());

    const live = await start();
    const off = await control('POST', `targets/${TARGET}/disconnect`);
    expect(off.status).toBe(202);
    expect(off.body).toMatchObject({ target: TARGET, connected: false });
    const err = await rejectionOf(start());
    expect(err).toBeInstanceOf(TargetNotConnected);
    expect(err.message).toBe(`${TARGET} is not connected.`);
    // The other target, and the session already running, are untouched.
    expect((await start(OTHER)).SessionId).toBeTruthy();
    expect(api.registry.get(live.SessionId!)?.state).toBe('pending');
    expect(api.config.targets[TARGET]!.connected).toBe(false);

    const on = await control('POST', `targets/${TARGET}/connect`);
    expect(on.status).toBe(202);
    expect(on.body).toMatchObject({ connected: true });
    expect((await start()).SessionId).toBeTruthy();
    expect((await control('GET', `targets/${TARGET}`)).body).toMatchObject({ startSessionCalls: 3, sessions: 2 });
  });

  it('404 for an unknown target, 405 for a wrong method', async () => {
    for (const path of ['targets/i-nope', 'targets/i-nope/disconnect', 'targets/i-nope/connect']) {
      const res = await control(path.endsWith('nope') ? 'GET' : 'POST', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error).toBe('TargetNotFound');
    }
    expect((await control('GET', `targets/${TARGET}/disconnect`)).status).toBe(405);
    expect((await control('POST', 'targets')).status).toBe(405);
  });
});

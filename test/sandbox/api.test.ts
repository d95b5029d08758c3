import {
  DoesNotExistException,
  InvalidDocument,
  InvalidParameters,
  ResumeSessionCommand,
  SSMClient,
  StartSessionCommand,
  TargetNotConnected,
  TerminateSessionCommand,
} from '@aws-sdk/client-ssm';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSandboxConfig } from '../../src/sandbox/index.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let ssm: SSMClient;
const TARGET = 'i-0api00000000000001';

beforeAll(async () => {
  env = await startTestSandbox(
    { [TARGET]: { ports: { '80': '127.0.0.1:1' } }, 'mi-0offline000000001': { connected: false } },
    {
      config: {
        documents: {
          'Custom-PortDoc': { parameters: { portNumber: { default: '443' } }, properties: { portNumber: '{{ portNumber }}', type: 'LocalPortForwarding' } },
        },
      },
    },
  );
  ssm = client();
});

afterEach(() => env.sandbox.faults.reset());

afterAll(async () => {
  ssm?.destroy();
  await env?.close();
});

function client(maxAttempts = 1): SSMClient {
  return new SSMClient({ endpoint: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS, maxAttempts });
}

async function start(documentName: string | undefined, parameters?: Record<string, string[]>, target = TARGET) {
  return ssm.send(new StartSessionCommand({ Target: target, ...(documentName ? { DocumentName: documentName } : {}), ...(parameters ? { Parameters: parameters } : {}) }));
}

async function errorOf(p: Promise<unknown>): Promise<Error & { name: string; $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { name: string };
  }
  throw new Error('expected the call to fail');
}

describe('sandbox SSM API through @aws-sdk/client-ssm', () => {
  it('starts sessions for each built-in document with the resolved properties', async () => {
    const cases: Array<[string, Record<string, string[]>, object]> = [
      ['AWS-StartSSHSession', { portNumber: ['22'] }, { portNumber: '22' }],
      ['AWS-StartPortForwardingSession', { portNumber: ['80'] }, { portNumber: '80', type: 'LocalPortForwarding', localPortNumber: '0' }],
      ['AWS-StartPortForwardingSessionToRemoteHost', { host: ['db.internal'], portNumber: ['5432'] }, { host: 'db.internal', portNumber: '5432', type: 'LocalPortForwarding', localPortNumber: '0' }],
      ['Custom-PortDoc', {}, { portNumber: '443', type: 'LocalPortForwarding' }],
    ];
    for (const [doc, params, properties] of cases) {
      const out = await start(doc, params);
      expect(out.SessionId).toMatch(/^sandbox-[0-9a-f]{17}$/);
      expect(out.TokenValue).toBeTruthy();
      expect(out.StreamUrl).toBe(`ws://127.0.0.1:${env.sandbox.port}/v1/data-channel/${out.SessionId}?role=publish_subscribe`);
      expect(env.sandbox.registry.get(out.SessionId!)?.properties).toEqual(properties);
    }
  });

  it('answers TargetNotConnected for unknown and offline targets', async () => {
    for (const target of ['i-0doesnotexist00000', 'mi-0offline000000001']) {
      const err = await errorOf(start('AWS-StartSSHSession', undefined, target));
      expect(err).toBeInstanceOf(TargetNotConnected);
      expect(err.message).toBe(`${target} is not connected.`);
    }
  });

  it('validates names and lengths as the service does', async () => {
    expect((await errorOf(start('x'))).name).toBe('ValidationException');
    expect((await errorOf(start('bad name!'))).name).toBe('ValidationException');
    expect((await errorOf(start('AWS-StartSSHSession', undefined, 'x'.repeat(401)))).name).toBe('ValidationException');
    expect((await errorOf(start('AWS-StartSSHSession', { ['k'.repeat(256)]: ['1'] }))).name).toBe('ValidationException');
    const longReason = new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession', Reason: 'r'.repeat(257) });
    expect((await errorOf(ssm.send(longReason))).name).toBe('ValidationException');
  });

  it('answers InvalidDocument for unknown documents and shells, InvalidParameters for unknown or bad parameters and a missing host', async () => {
    expect(await errorOf(start('No-Such-Doc'))).toBeInstanceOf(InvalidDocument);
    expect(await errorOf(start(undefined))).toBeInstanceOf(InvalidDocument);
    expect(await errorOf(start('AWS-StartPortForwardingSession', { nope: ['1'] }))).toBeInstanceOf(InvalidParameters);
    expect(await errorOf(start('AWS-StartPortForwardingSession', { portNumber: ['99999'] }))).toBeInstanceOf(InvalidParameters);
    const missingHost = await errorOf(start('AWS-StartPortForwardingSessionToRemoteHost', { portNumber: ['80'] }));
    expect(missingHost).toBeInstanceOf(InvalidParameters);
    expect(missingHost.message).toMatch(/host/);
  });

  it('resumes a live session with a new token; the old token stops working', async () => {
    const first = await start('AWS-StartPortForwardingSession', { portNumber: ['80'] });
    const resumed = await ssm.send(new ResumeSessionCommand({ SessionId: first.SessionId }));
    expect(resumed.TokenValue).toBeTruthy();
    expect(resumed.TokenValue).not.toBe(first.TokenValue);
    expect(await dataChannelCloseCode(first.StreamUrl!, first.TokenValue!)).toBe(1008);
  });

  it('gives no token for a terminated or expired session and DoesNotExist for an unknown one', async () => {
    const a = await start('AWS-StartSSHSession');
    await ssm.send(new TerminateSessionCommand({ SessionId: a.SessionId }));
    const ra = await ssm.send(new ResumeSessionCommand({ SessionId: a.SessionId }));
    expect(ra.TokenValue).toBeUndefined();
    expect(ra.StreamUrl).toBeUndefined();
    const b = await start('AWS-StartSSHSession');
    expect((await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${b.SessionId}/expire`, { method: 'POST' })).status).toBe(200);
    expect((await ssm.send(new ResumeSessionCommand({ SessionId: b.SessionId }))).TokenValue).toBeUndefined();
    expect(await errorOf(ssm.send(new ResumeSessionCommand({ SessionId: 'sandbox-00000000000000000' })))).toBeInstanceOf(DoesNotExistException);
  });

  it('fails the next ResumeSession calls on request: 500, then throttling', async () => {
    const s = await start('AWS-StartSSHSession');
    await fetch(`${env.sandbox.endpoint}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ failResumeCount: 1, failResumeWith: 'InternalServerError' }) });
    const e500 = await errorOf(ssm.send(new ResumeSessionCommand({ SessionId: s.SessionId })));
    expect(e500.name).toBe('InternalServerError');
    expect(e500.$metadata?.httpStatusCode).toBe(500);
    env.sandbox.faults.update({ failResumeCount: 1, failResumeWith: 'ThrottlingException' });
    expect((await errorOf(ssm.send(new ResumeSessionCommand({ SessionId: s.SessionId })))).name).toBe('ThrottlingException');
    expect((await ssm.send(new ResumeSessionCommand({ SessionId: s.SessionId }))).TokenValue).toBeTruthy();
    expect(env.sandbox.registry.get(s.SessionId!)?.counters.resumeSessionCalls).toBeGreaterThanOrEqual(3);
  });

  it('requires a SigV4 Authorization header', async () => {
    const res = await fetch(env.sandbox.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.StartSession' },
      body: JSON.stringify({ Target: TARGET }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  });

  it('validates fault settings on the control API', async () => {
    const bad = await fetch(`${env.sandbox.endpoint}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ dropRate: 2 }) });
    expect(bad.status).toBe(400);
    const unknown = await fetch(`${env.sandbox.endpoint}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ explode: true }) });
    expect(unknown.status).toBe(400);
    const ok = await fetch(`${env.sandbox.endpoint}/_sandbox/faults`, { method: 'POST', body: JSON.stringify({ dropRate: 0.5 }) });
    expect(((await ok.json()) as { dropRate: number }).dropRate).toBe(0.5);
  });

  it('rejects a bad config with the key named', () => {
    expect(() => loadSandboxConfig({ targets: { 'i-1': { ports: { '22': 'nope' } } } })).toThrow(/targets\.i-1\.ports\.22/);
    expect(() => loadSandboxConfig({})).toThrow(/targets/);
  });
});

/** Open a data channel with a token and report how the gateway closes it. */
function dataChannelCloseCode(streamUrl: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(streamUrl);
    const timer = setTimeout(() => reject(new Error('no close within 5 s')), 5_000);
    ws.on('open', () => ws.send(JSON.stringify({ MessageSchemaVersion: '1.0', RequestId: 'r', TokenValue: token, ClientId: 'c', ClientVersion: '1.2.694.0' })));
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    ws.on('error', () => {});
  });
}

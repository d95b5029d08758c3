import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { BridgeSession, createSsmApi, signDataChannelUpgrade, type AwsCredentials, type SsmApi } from '../../src/session/index.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';

// The library client's upgrade signing against the sandbox's verifier: credentials are resolved again at
// every connect and resume, so a rotated key is used at the next resume, and a bad one is refused there.
const TARGET = 'i-0upgradesign00001';
const ROTATED = { accessKeyId: 'AKIDROTATED000001', secretAccessKey: 'rotated-secret' };

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;
let real: SsmApi;
const sessions: BridgeSession[] = [];

beforeAll(async () => {
  echo = await echoServer();
  env = await startTestSandbox({ [TARGET]: { ports: { '7': `127.0.0.1:${echo.port}` } } }, { config: { credentials: [ROTATED] } });
  real = await createSsmApi({ endpointUrl: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.terminate(200)));
});

afterAll(async () => {
  real?.destroy();
  await env?.close();
  await echo?.close();
});

/** The real API, whose upgrade is signed with whatever `current` holds when a connect asks. */
function rotatingApi(): { api: SsmApi; calls: () => number; use: (c: AwsCredentials) => void } {
  let current: AwsCredentials = SANDBOX_CREDENTIALS;
  let calls = 0;
  const api: SsmApi = {
    // The endpoint the StreamUrls come from: a plain ws: URL is accepted only on its loopback host.
    endpointUrl: env.sandbox.endpoint,
    startSession: (input, options) => real.startSession(input, options),
    resumeSession: (id, options) => real.resumeSession(id, options),
    terminateSession: (id, options) => real.terminateSession(id, options),
    destroy: () => {},
    upgradeSigning: {
      credentials: async () => {
        calls++;
        return current;
      },
      region: () => real.upgradeSigning!.region(),
    },
  };
  return { api, calls: () => calls, use: (c) => (current = c) };
}

const counters = (id: string) => env.sandbox.registry.get(id)!.counters;

async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('data-channel upgrade signing', () => {
  it('uses the region and credentials of the SSM client', async () => {
    expect(await real.upgradeSigning!.region()).toBe('us-east-1');
    expect(await real.upgradeSigning!.credentials()).toMatchObject(SANDBOX_CREDENTIALS);
    const headers = await signDataChannelUpgrade('wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s-1?role=publish_subscribe', real.upgradeSigning!, new Date(Date.UTC(2024, 0, 2)));
    expect(Object.keys(headers).sort()).toEqual(['authorization', 'host', 'x-amz-date']);
    expect(headers.host).toBe('ssmmessages.us-east-1.amazonaws.com');
    expect(headers['x-amz-date']).toBe('20240102T000000Z');
    expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDSANDBOX\/20240102\/us-east-1\/ssmmessages\/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$/);
    const withToken = await signDataChannelUpgrade('ws://127.0.0.1:1/v1/data-channel/s-1?role=publish_subscribe', { region: async () => 'eu-west-1', credentials: async () => ({ ...SANDBOX_CREDENTIALS, sessionToken: 'tok' }) });
    expect(withToken['x-amz-security-token']).toBe('tok');
    expect(withToken.authorization).toMatch(/\/eu-west-1\/ssmmessages\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token,/);
  });

  it('resolves credentials at every connect and resume: a rotated key signs the next resume, a bad one is refused', async () => {
    const { api, calls, use } = rotatingApi();
    const logged: string[] = [];
    const record = (obj: object, msg?: string): void => void logged.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
    const logger = { debug: record, info: record, warn: record, error: record };
    const session = await BridgeSession.start({ api, start: { target: TARGET, documentName: 'AWS-StartPortForwardingSession', parameters: { portNumber: ['7'] } }, resumeTimeoutMs: 3_000, logger });
    sessions.push(session);
    const id = session.sessionId;
    expect(calls()).toBe(1);
    expect(counters(id)).toMatchObject({ signedUpgrades: 1, connections: 1 });

    use(ROTATED);
    env.sandbox.faults.requestDrop(id);
    await waitUntil(() => counters(id).connections === 2 && env.sandbox.registry.get(id)!.state === 'connected', 'the resume with the rotated key');
    expect(calls()).toBe(2);
    expect(counters(id).signedUpgrades).toBe(2);

    use({ accessKeyId: ROTATED.accessKeyId, secretAccessKey: 'not-the-secret' });
    env.sandbox.faults.requestDrop(id);
    const err = await within(session.closed(), 10_000, 'the session to give up resuming');
    expect(err?.code).toBe(ErrorCode.RESUME_FAILED);
    expect(logged.some((line) => /resume attempt failed .*refused the connection \(HTTP 403 InvalidSignatureException\)/.test(line))).toBe(true);
    // Nothing logged carries the signature or the secret.
    expect(logged.join('\n')).not.toMatch(/AWS4-HMAC-SHA256|Signature=|not-the-secret|rotated-secret/);
    expect(calls()).toBeGreaterThan(2);
    expect(counters(id)).toMatchObject({ signedUpgrades: 2, connections: 2 });
  }, 30_000);

  it('ends the session with a credentials error when credentials cannot be resolved', async () => {
    const { api } = rotatingApi();
    const broken: SsmApi = { ...api, upgradeSigning: { region: async () => 'us-east-1', credentials: async () => Promise.reject(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' })) } };
    const before = env.sandbox.registry.list().length;
    const failure = await BridgeSession.start({ api: broken, start: { target: TARGET, documentName: 'AWS-StartPortForwardingSession', parameters: { portNumber: ['7'] } } }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(failure?.code).toBe(ErrorCode.CREDENTIALS);
    expect(failure?.message).toMatch(/AWS credentials were missing, expired or rejected \(Could not load credentials/);
    // The started session was terminated, not left pending.
    expect(env.sandbox.registry.list().slice(before).map((r) => r.state)).toEqual(['terminated']);
  });
});

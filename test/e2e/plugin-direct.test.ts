/**
 * `ssm-bridge plugin` run directly with a session the test started (as the AWS CLI would have), against the
 * sandbox: no AWS CLI needed. The failures a drop-in must handle without leaving the session open.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { createSsmApi, type SsmApi } from '../../src/session/index.js';
import { runCli, sandboxEnv } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';

// The SDK's Node-support notice is not this test's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const TARGET = 'i-0plugindirect00001';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;
let api: SsmApi;

beforeAll(async () => {
  echo = await echoServer();
  env = await startTestSandbox({ [TARGET]: { ports: { '7': `127.0.0.1:${echo.port}` } } });
  api = await createSsmApi({ region: 'us-east-1', endpointUrl: env.sandbox.endpoint, credentials: SANDBOX_CREDENTIALS });
});

afterAll(async () => {
  api?.destroy();
  await env?.close();
  await echo?.close();
});

async function sessionState(sessionId: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${encodeURIComponent(sessionId)}`);
    const { state } = (await res.json()) as { state: string };
    if (state === 'terminated' || Date.now() > deadline) return state;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('ssm-bridge plugin with a session started elsewhere', () => {
  it('the local port is taken: exit 5 with one line, and the session is terminated (not left to its idle timeout)', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const request = { Target: TARGET, DocumentName: 'AWS-StartPortForwardingSession', Parameters: { portNumber: ['7'], localPortNumber: [String(port)] } };
      const started = await api.startSession({ target: TARGET, documentName: request.DocumentName, parameters: request.Parameters });
      const response = JSON.stringify({ SessionId: started.sessionId, TokenValue: started.tokenValue, StreamUrl: started.streamUrl });
      const run = runCli(['plugin', 'AWS_SSM_START_SESSION_RESPONSE', 'us-east-1', 'StartSession', '', JSON.stringify(request), env.sandbox.endpoint], {
        env: sandboxEnv({ AWS_SSM_START_SESSION_RESPONSE: response }),
      });
      const status = await within(run.exited, 20_000, 'plugin exit');
      expect({ status, stdout: run.stdout() }).toEqual({ status: 5, stdout: '' });
      expect(run.stderr().trim().split('\n')).toHaveLength(1);
      expect(run.stderr()).toMatch(new RegExp(`^ssm-bridge: .*${port}.*in use`));
      expect(await sessionState(started.sessionId)).toBe('terminated');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('the session ends on the service side while forwarding: exit 6 (the official plugin would exit 0), nothing left running', async () => {
    const request = { Target: TARGET, DocumentName: 'AWS-StartPortForwardingSession', Parameters: { portNumber: ['7'], localPortNumber: ['0'] } };
    const started = await api.startSession({ target: TARGET, documentName: request.DocumentName, parameters: request.Parameters });
    const response = JSON.stringify({ SessionId: started.sessionId, TokenValue: started.tokenValue, StreamUrl: started.streamUrl });
    const run = runCli(['plugin', response, 'us-east-1', 'StartSession', '', JSON.stringify(request), env.sandbox.endpoint], { env: sandboxEnv() });
    const deadline = Date.now() + 20_000;
    while (!/Waiting for connections\.\.\.\n/.test(run.stdout()) && Date.now() < deadline && run.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    expect(run.stdout()).toMatch(new RegExp(`^\\nStarting session with SessionId: ${started.sessionId}\\nPort \\d+ opened for sessionId ${started.sessionId}\\.\\nWaiting for connections\\.\\.\\.\\n$`));
    const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${encodeURIComponent(started.sessionId)}/terminate`, { method: 'POST' });
    expect(res.status).toBeLessThan(300);
    expect(await within(run.exited, 20_000, 'plugin exit')).toBe(6);
    expect(run.stderr()).toMatch(/^ssm-bridge: session \S+ was closed by the service/m);
  });
});

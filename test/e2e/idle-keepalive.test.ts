import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeSession, createSsmApi } from '../../src/session/index.js';
import { SmuxSession } from '../../src/smux/index.js';
import { startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';

// Agents from 3.1.1511.0 turn smux keep-alive off for current clients; older multiplexing agents keep it on
// (NOP every 10 s, dead after 30 s of silence) whatever the client says (SPEC §7).
const CURRENT_AGENT = 'i-0idle0000000000new';
const OLD_MUX_AGENT = 'i-0idle0000000000old';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;

beforeAll(async () => {
  echo = await echoServer();
  const ports = { '7': `127.0.0.1:${echo.port}` };
  env = await startTestSandbox({
    [CURRENT_AGENT]: { agentVersion: '3.3.2746.0', ports },
    [OLD_MUX_AGENT]: { agentVersion: '3.1.1446.0', ports },
  });
});

afterAll(async () => {
  await env?.close();
  await echo?.close();
});

async function echoOnce(port: number, text: string): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  return within(
    new Promise<string>((resolve, reject) => {
      socket.on('connect', () => socket.write(text));
      socket.on('data', (d: Buffer) => {
        socket.destroy();
        resolve(d.toString());
      });
      socket.on('error', reject);
    }),
    10_000,
    'echo through the forward',
  );
}

describe('an idle forward stays usable (agent keep-alive rules)', () => {
  it('works after 90 s idle with a current agent and with an old multiplexing agent', async () => {
    const runs: CliRun[] = [];
    try {
      const current = await startForward([CURRENT_AGENT, '--remote-port', '7', '--endpoint-url', env.sandbox.endpoint]);
      const old = await startForward([OLD_MUX_AGENT, '--remote-port', '7', '--endpoint-url', env.sandbox.endpoint]);
      runs.push(current.run, old.run);
      expect(await echoOnce(current.port, 'before')).toBe('before');
      expect(await echoOnce(old.port, 'before')).toBe('before');
      await new Promise((r) => setTimeout(r, 90_000));
      expect(current.run.child.exitCode).toBeNull();
      expect(old.run.child.exitCode).toBeNull();
      expect(await echoOnce(current.port, 'after 90 s')).toBe('after 90 s');
      expect(await echoOnce(old.port, 'after 90 s')).toBe('after 90 s');
    } finally {
      await Promise.all(runs.map((r) => stopCli(r)));
    }
  }, 150_000);

  it('control: a client that sends no keep-alives to an old agent is cut off (sandbox timings shortened)', async () => {
    const short = await startTestSandbox({ [OLD_MUX_AGENT]: { agentVersion: '3.1.1446.0', ports: { '7': `127.0.0.1:${echo.port}` } } }, { smuxKeepAlive: { intervalMs: 200, timeoutMs: 1_000 } });
    const api = await createSsmApi({ endpointUrl: short.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
    try {
      const session = await BridgeSession.start({
        api,
        start: { target: OLD_MUX_AGENT, documentName: 'AWS-StartPortForwardingSession', parameters: { portNumber: ['7'] } },
      });
      // A silent smux client: what a client that trusted its version report would do against this agent.
      const smux = new SmuxSession(session.data, { role: 'client', keepAlive: false });
      const closed = await within(session.closed(), 10_000, 'the agent ending an idle session');
      expect(closed?.code).toBe('SESSION_TERMINATED');
      smux.close();
    } finally {
      api.destroy();
      await short.close();
    }
  }, 20_000);
});

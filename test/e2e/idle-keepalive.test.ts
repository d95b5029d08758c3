import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeSession, createSsmApi } from '../../src/session/index.js';
import { SmuxSession } from '../../src/smux/index.js';
import { startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';

// smux keep-alive (NOP every 10 s, dead after 30 s of silence) by agent release and client version (SPEC §7).
/** For the control: an agent that runs keep-alive for every client. */
const OLD_MUX_AGENT = 'i-0idle0000000000old';

const IDLE_AGENTS: Array<[string, string]> = [
  ['i-0idle00000001446', '3.1.1446.0'],
  ['i-0idle00000001511', '3.1.1511.0'],
  ['i-0idle00000001575', '3.1.1575.0'],
  ['i-0idle00000002746', '3.3.2746.0'],
];

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;

beforeAll(async () => {
  echo = await echoServer();
  const ports = { '7': `127.0.0.1:${echo.port}` };
  env = await startTestSandbox({
    ...Object.fromEntries(IDLE_AGENTS.map(([target, agentVersion]) => [target, { agentVersion, ports }])),
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
  // Each release's own rule (SPEC §7): 3.1.1446.0 runs no keep-alive for anyone, 3.1.1511.0 for everyone,
  // 3.1.1575.0 and 3.3.x only for old clients. A client that expects NOPs the agent never sends ends an idle
  // forward after 30 s; one that sends none where the agent expects them is cut off.
  it('works after 60 s idle on agents 3.1.1446.0, 3.1.1511.0, 3.1.1575.0 and 3.3.x', async () => {
    const runs: CliRun[] = [];
    try {
      const forwards = await Promise.all(IDLE_AGENTS.map(([target]) => startForward([target, '--remote-port', '7', '--endpoint-url', env.sandbox.endpoint])));
      runs.push(...forwards.map((f) => f.run));
      for (const f of forwards) expect(await echoOnce(f.port, 'before')).toBe('before');
      await new Promise((r) => setTimeout(r, 60_000));
      expect(forwards.map((f) => f.run.child.exitCode)).toEqual(IDLE_AGENTS.map(() => null));
      for (const f of forwards) expect(await echoOnce(f.port, 'after 60 s')).toBe('after 60 s');
    } finally {
      await Promise.all(runs.map((r) => stopCli(r)));
    }
  }, 120_000);

  it('control: a client that sends no keep-alives to an old agent is cut off (sandbox timings shortened)', async () => {
    // 3.1.1374.0 runs keep-alive for every client (port_mux.go of that release; 3.1.1446.0 turned it off for all).
    const short = await startTestSandbox({ [OLD_MUX_AGENT]: { agentVersion: '3.1.1374.0', ports: { '7': `127.0.0.1:${echo.port}` } } }, { smuxKeepAlive: { intervalMs: 200, timeoutMs: 1_000 } });
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

import net from 'node:net';
import { ResumeSessionCommand, SSMClient, StartSessionCommand } from '@aws-sdk/client-ssm';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeAgentMessage, encodeAgentMessage, PayloadType } from '../../src/protocol/index.js';
import { ackFrame } from '../helpers/agent-frames.js';
import { AGENT_END_REASON } from '../../src/sandbox/agent/agent-session.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { IDLE_TIMEOUT_OUTPUT, IDLE_TIMEOUT_REASON } from '../../src/sandbox/gateway/gateway.js';
import { startSandbox } from '../../src/sandbox/index.js';
import { RawDataChannel, type RawClientOptions } from '../helpers/raw-data-channel.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, type TestServer } from '../helpers/servers.js';

/*
 * How sessions end besides TerminateSession and expiry: the service's idle session timeout (docs/sandbox.md:
 * the agent source does not enforce it for port sessions) and the agent ending the session itself
 * (port.go Execute returns, sessionplugin.go PrepareToCloseChannel + Close).
 */

const TARGET = 'i-0se00000000000001';
/** An agent whose smux keep-alive is on whatever the client (port_mux.go of 3.1.1374.0). */
const KEEPALIVE = 'i-0se0000000keepal1';
const IDLE_MS = 600;

let idle: Awaited<ReturnType<typeof startTestSandbox>>;
let plain: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;
/** An echo server that records when each connection closed. */
let tracked: net.Server;
let trackedPort = 0;
const trackedClosedAt: number[] = [];
const clients: RawDataChannel[] = [];

beforeAll(async () => {
  echo = await echoServer();
  tracked = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.on('close', () => trackedClosedAt.push(Date.now()));
    socket.pipe(socket);
  });
  await new Promise<void>((r) => tracked.listen(0, '127.0.0.1', r));
  trackedPort = (tracked.address() as net.AddressInfo).port;
  const ports = { '7': `127.0.0.1:${echo.port}`, '8': `127.0.0.1:${trackedPort}` };
  idle = await startTestSandbox(
    { [TARGET]: { ports }, [KEEPALIVE]: { agentVersion: '3.1.1374.0', ports } },
    { idleSessionTimeoutMs: IDLE_MS, smuxKeepAlive: { intervalMs: 100, timeoutMs: 60_000 } },
  );
  plain = await startTestSandbox({ [TARGET]: { ports } });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await idle?.close();
  await plain?.close();
  await echo?.close();
  await new Promise((r) => tracked?.close(r));
});

async function connect(env: Awaited<ReturnType<typeof startTestSandbox>>, options: Partial<RawClientOptions> & { port?: string } = {}): Promise<RawDataChannel> {
  const client = new RawDataChannel({
    endpoint: env.sandbox.endpoint,
    target: options.target ?? TARGET,
    documentName: options.documentName ?? 'AWS-StartSSHSession',
    parameters: { portNumber: [options.port ?? '7'] },
    ...options,
  });
  clients.push(client);
  await client.open();
  await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
  return client;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const wsOf = (client: RawDataChannel): WebSocket => (client as unknown as { ws: WebSocket }).ws;

async function resume(env: Awaited<ReturnType<typeof startTestSandbox>>, sessionId: string) {
  const client = new SSMClient({ endpoint: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS, maxAttempts: 1 });
  try {
    return await client.send(new ResumeSessionCommand({ SessionId: sessionId }));
  } finally {
    client.destroy();
  }
}

async function control(env: Awaited<ReturnType<typeof startTestSandbox>>, method: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/${path}`, { method, signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.json() };
}

describe('idle session timeout (the service ends it; config idleSessionTimeoutMs)', () => {
  it('data either way keeps a session alive; once none flows for the timeout, channel_closed says so and no token comes back', async () => {
    expect(idle.sandbox.idleSessionTimeoutMs).toBe(IDLE_MS);
    const client = await connect(idle);
    // 1.5 s (2.5 timeouts) of data from the client every 150 ms, each echoed: the session stays.
    for (let i = 0; i < 10; i++) {
      client.send(PayloadType.Output, Buffer.from(`tick ${i}`));
      await sleep(150);
    }
    expect(client.channelClosed).toBeUndefined();
    expect(idle.sandbox.registry.get(client.sessionId)?.state).toBe('connected');
    const lastData = Math.max(...client.streamMessages().map((r) => r.atMs));

    await client.until(() => client.channelClosed !== undefined, 5_000, 'channel_closed at the idle timeout');
    expect(client.channelClosed!.output).toBe(IDLE_TIMEOUT_OUTPUT);
    expect(client.channelClosed!.output).toBe('Your session timed out due to inactivity and has been terminated.');
    const idleFor = client.channelClosed!.atMs - lastData;
    expect(idleFor).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(idleFor).toBeLessThan(IDLE_MS + 1_000);
    expect(idle.sandbox.registry.get(client.sessionId)).toMatchObject({ state: 'terminated', terminatedReason: IDLE_TIMEOUT_REASON, channelClosedOutput: IDLE_TIMEOUT_OUTPUT });
    expect(IDLE_TIMEOUT_REASON).toBe('idle timeout');
    await client.until(() => wsOf(client).readyState === WebSocket.CLOSED, 2_000, 'the WebSocket closed');
    const resumed = await resume(idle, client.sessionId);
    expect(resumed.TokenValue).toBeUndefined();
    expect(resumed.StreamUrl).toBeUndefined();
  });

  it('acks, pings, duplicates and the agent\'s resends are not data: the session still times out', async () => {
    const client = await connect(idle, { ackPolicy: 'none' });
    // Nothing acknowledged: the agent resends its oldest message every tick. The client repeats its own
    // first message (a duplicate), acknowledges an old message again, and pings, every 100 ms.
    const first = client.send(PayloadType.Output, Buffer.from('once'));
    const startedAt = Date.now();
    let ackSequence = 1_000;
    const chatter = setInterval(() => {
      if (wsOf(client).readyState !== WebSocket.OPEN) return;
      client.send(PayloadType.Output, Buffer.from('once'), first);
      client.ack(client.streamMessages()[0]!.msg);
      // An ack whose own sequence number field is new: still an ack, not data.
      client.sendRaw(encodeAgentMessage({ ...decodeAgentMessage(ackFrame(client.streamMessages()[0]!.msg)), sequenceNumber: ++ackSequence }));
      wsOf(client).ping();
    }, 100);
    try {
      await client.until(() => client.channelClosed !== undefined, IDLE_MS + 3_000, 'channel_closed at the idle timeout');
    } finally {
      clearInterval(chatter);
    }
    expect(client.channelClosed!.output).toBe(IDLE_TIMEOUT_OUTPUT);
    expect(client.channelClosed!.atMs - startedAt).toBeLessThan(IDLE_MS + 1_000);
    expect(idle.sandbox.traffic(client.sessionId)!.resends).toBeGreaterThan(0);
  });

  it('smux keep-alive NOPs are data (port_mux.go: keep-alive "breaks Session Manager idle timeout")', async () => {
    const client = await connect(idle, { target: KEEPALIVE, documentName: 'AWS-StartPortForwardingSession' });
    await sleep(IDLE_MS * 3);
    expect(client.channelClosed).toBeUndefined();
    expect(idle.sandbox.registry.get(client.sessionId)?.state).toBe('connected');
  });

  it('a session ended otherwise keeps its own reason (the idle timer is cleared)', async () => {
    const client = await connect(idle);
    expect((await control(idle, 'POST', `sessions/${client.sessionId}/terminate`)).status).toBe(200);
    await client.until(() => client.channelClosed !== undefined, 2_000, 'channel_closed');
    await sleep(IDLE_MS + 200);
    expect(idle.sandbox.registry.get(client.sessionId)).toMatchObject({ terminatedReason: 'terminated through the sandbox control API' });
    expect(client.channelClosed!.output).toBe('terminated through the sandbox control API');
  });

  it('defaults to 20 minutes; the config key and the option are validated', async () => {
    expect(plain.sandbox.idleSessionTimeoutMs).toBe(20 * 60_000);
    expect(plain.sandbox.config.idleSessionTimeoutMs).toBe(20 * 60_000);
    await expect(startSandbox({ config: { targets: {}, idleSessionTimeoutMs: 0 } })).rejects.toThrow(/sandbox config: idleSessionTimeoutMs must be a whole number of milliseconds/);
    await expect(startSandbox({ config: { targets: {} }, idleSessionTimeoutMs: 1.5 })).rejects.toThrow(/idleSessionTimeoutMs must be a whole number/);
    const fromConfig = await startSandbox({ config: { targets: {}, idleSessionTimeoutMs: 1234 } });
    try {
      expect(fromConfig.idleSessionTimeoutMs).toBe(1234);
    } finally {
      await fromConfig.close();
    }
  });
});

describe('the agent ends the session (POST /_sandbox/sessions/<id>/agent-end)', () => {
  it('stops the plugin (the destination closes), waits for acks, then channel_closed with an empty Output; no token after', async () => {
    const client = await connect(plain, { port: '8' });
    client.send(PayloadType.Output, Buffer.from('hello'));
    await client.until(() => client.outputBytes() === 5, 5_000, 'the echo');
    const closedBefore = trackedClosedAt.length;
    const asked = Date.now();
    const res = await control(plain, 'POST', `sessions/${client.sessionId}/agent-end`);
    expect(res.status).toBe(202);
    await client.until(() => client.channelClosed !== undefined, 3_000, 'channel_closed');
    // Everything was acknowledged, so PrepareToCloseChannel returns at once.
    expect(client.channelClosed!.atMs - asked).toBeLessThan(1_000);
    expect(client.channelClosed!.output).toBe('');
    // The plugin closed its destination connection (port.go execute: p.stop()).
    await client.until(() => trackedClosedAt.length === closedBefore + 1, 2_000, 'the destination connection closed');
    await client.until(() => wsOf(client).readyState === WebSocket.CLOSED, 2_000, 'the WebSocket closed');
    expect(plain.sandbox.registry.get(client.sessionId)).toMatchObject({ state: 'terminated', terminatedReason: AGENT_END_REASON, channelClosedOutput: '' });
    expect((await resume(plain, client.sessionId)).TokenValue).toBeUndefined();
    // Already over: 409.
    const again = await control(plain, 'POST', `sessions/${client.sessionId}/agent-end`);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('SessionTerminated');
  });

  it('waits at most 2 s for unacknowledged messages first (PrepareToCloseChannel)', async () => {
    const client = await connect(plain, { ackPolicy: 'none' });
    const asked = Date.now();
    expect((await control(plain, 'POST', `sessions/${client.sessionId}/agent-end`)).status).toBe(202);
    await client.until(() => client.channelClosed !== undefined, 5_000, 'channel_closed');
    const waited = client.channelClosed!.atMs - asked;
    expect(waited).toBeGreaterThanOrEqual(1_800);
    expect(waited).toBeLessThan(3_000);
    expect(client.channelClosed!.output).toBe('');
  });

  it('404 for an unknown session; 409 for one whose data channel never connected', async () => {
    const unknown = await control(plain, 'POST', 'sessions/sandbox-00000000000000000/agent-end');
    expect(unknown.status).toBe(404);
    const client = new SSMClient({ endpoint: plain.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS, maxAttempts: 1 });
    try {
      const s = await client.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' }));
      const res = await control(plain, 'POST', `sessions/${s.SessionId}/agent-end`);
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('NoAgent');
      expect(plain.sandbox.registry.get(s.SessionId!)?.state).toBe('pending');
    } finally {
      client.destroy();
    }
    expect((await control(plain, 'GET', 'sessions/sandbox-00000000000000000/agent-end')).status).toBe(405);
  });
});

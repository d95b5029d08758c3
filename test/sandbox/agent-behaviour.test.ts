import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFlag, FlagValue, MessageFlags, MessageType, PayloadType, SCHEMA_VERSION, encodeAgentMessage } from '../../src/protocol/index.js';
import { FrameParser, SmuxCommand, encodeFrame, type SmuxFrame } from '../../src/smux/frame.js';
import { RawDataChannel, type RawClientOptions } from '../helpers/raw-data-channel.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, listenTcp, type TestServer } from '../helpers/servers.js';

/*
 * The sandbox agent, driven by a client written on the codec alone (test/helpers/raw-data-channel.ts), shows
 * each behaviour of the real agent that docs/sandbox.md lists, with the agent source file it comes from.
 */

const CURRENT = 'i-0ab00000000000001';
const OLD_BASIC = 'i-0ab0000000000old1';
const versions = ['3.0.222.0', '3.1.1374.0', '3.1.1446.0', '3.1.1476.0', '3.1.1511.0', '3.1.1575.0', '3.3.2746.0'];
const versionTarget = (v: string): string => `i-0kv${v.replace(/\./g, '').padStart(14, '0')}`;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let slowStart: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;
/** Sends 1 MiB as soon as a connection arrives, then stays open. */
let burst: TestServer;
/** Sends 10 KiB, then closes. */
let shortBurst: TestServer;
const connectionsSeen: number[] = [];
let basicConnections = 0;
let basicServer: net.Server;
let basicPort = 0;
const clients: RawDataChannel[] = [];

function burstServer(bytes: number, closeAfter: boolean): Promise<TestServer> {
  return listenTcp((socket) => {
    socket.on('error', () => {});
    socket.write(randomBytes(bytes), () => {
      if (closeAfter) socket.end();
    });
    socket.resume();
  });
}

beforeAll(async () => {
  echo = await echoServer();
  burst = await burstServer(1024 * 1024, false);
  shortBurst = await burstServer(10 * 1024, true);
  basicServer = net.createServer((socket) => {
    basicConnections++;
    connectionsSeen.push(Date.now());
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((r) => basicServer.listen(0, '127.0.0.1', r));
  basicPort = (basicServer.address() as net.AddressInfo).port;
  const ports = { '7': `127.0.0.1:${echo.port}`, '9': `127.0.0.1:${burst.port}`, '10': `127.0.0.1:${shortBurst.port}`, '11': `127.0.0.1:${basicPort}`, '12': '127.0.0.1:1' };
  const targets: Record<string, unknown> = { [CURRENT]: { ports }, [OLD_BASIC]: { agentVersion: '3.0.161.0', ports } };
  for (const v of versions) targets[versionTarget(v)] = { agentVersion: v, ports };
  env = await startTestSandbox(targets, { smuxKeepAlive: { intervalMs: 150, timeoutMs: 60_000 } });
  slowStart = await startTestSandbox({ [CURRENT]: { ports } }, { agent: { pluginStartDelayMs: 600 } });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  env.sandbox.faults.reset();
});

afterAll(async () => {
  await env?.close();
  await slowStart?.close();
  await echo?.close();
  await burst?.close();
  await shortBurst?.close();
  await new Promise((r) => basicServer?.close(r));
});

async function connect(options: Partial<RawClientOptions> & { target?: string; port?: string }, sandbox = env): Promise<RawDataChannel> {
  const client = new RawDataChannel({
    endpoint: sandbox.sandbox.endpoint,
    target: options.target ?? CURRENT,
    documentName: options.documentName ?? 'AWS-StartSSHSession',
    parameters: { portNumber: [options.port ?? '7'] },
    ...options,
  });
  clients.push(client);
  await client.open();
  return client;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sending (datachannel.go SendStreamDataMessage, ResendStreamDataMessageScheduler)', () => {
  it('has no send window: far more than 512 messages go out unacknowledged', async () => {
    const client = await connect({ port: '9', ackPolicy: 'none' });
    await client.until(() => client.streamMessages().length > 900, 10_000, '900 messages without any ack');
    expect(env.sandbox.traffic(client.sessionId)!.unacknowledged).toBeGreaterThan(900);
  });

  it('resends only its oldest unacknowledged message, at most once per 100 ms tick', async () => {
    const client = await connect({ port: '9', ackPolicy: 'none' });
    await client.until(() => client.streamMessages().length > 1000, 10_000, 'the burst');
    const from = Date.now();
    await sleep(1_500);
    const resends = client.received.filter((r) => r.atMs >= from && r.msg.messageType === MessageType.OutputStreamData && r.msg.sequenceNumber < 1000);
    // Nothing was acknowledged, so the oldest is always the HandshakeRequest (sequence 0).
    expect(new Set(resends.map((r) => r.msg.sequenceNumber))).toEqual(new Set([0]));
    expect(resends.length).toBeGreaterThanOrEqual(5);
    expect(resends.length).toBeLessThanOrEqual(16);
    // Once 0 is acknowledged, the next oldest (1) is what comes back.
    client.ack(client.arrivals(0)[0]!.msg);
    const after = Date.now();
    await sleep(700);
    const next = client.received.filter((r) => r.atMs >= after && r.msg.messageType === MessageType.OutputStreamData && r.msg.sequenceNumber < 1000);
    expect(next.length).toBeGreaterThan(0);
    expect(next.every((r) => r.msg.sequenceNumber === 1)).toBe(true);
  });

  it('at the end of a session waits at most 2 s for acknowledgements, then channel_closed', async () => {
    const unacked = await connect({ port: '10', ackPolicy: 'none' });
    await unacked.until(() => unacked.channelClosed !== undefined, 10_000, 'channel_closed');
    const lastSequence = Math.max(...unacked.streamMessages().map((r) => r.msg.sequenceNumber));
    const waited = unacked.channelClosed!.atMs - unacked.arrivals(lastSequence)[0]!.atMs;
    expect(waited).toBeGreaterThanOrEqual(1_800);
    expect(waited).toBeLessThan(3_000);

    const acked = await connect({ port: '10', ackPolicy: 'all' });
    await acked.until(() => acked.channelClosed !== undefined, 10_000, 'channel_closed');
    expect(acked.outputBytes()).toBe(10 * 1024);
    const lastAcked = Math.max(...acked.streamMessages().map((r) => r.atMs));
    expect(acked.channelClosed!.atMs - lastAcked).toBeLessThan(1_000);
  });
});

describe('receiving (datachannel.go handleStreamDataMessage, port.go InputStreamMessageHandler)', () => {
  it('acknowledges an in-order message only after the destination took it; the reader blocks meanwhile', async () => {
    const client = await connect({ port: '7' });
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    await sleep(100);
    env.sandbox.gateway.applySessionFault(client.sessionId, { kind: 'block-destination', ms: 1_200 });
    const blockedAt = Date.now();
    const first = client.send(PayloadType.Output, Buffer.from('first'));
    // A later message queues behind the blocked reader: not even acknowledged out of order.
    const later = client.send(PayloadType.Output, Buffer.from('later'), first + 5);
    await sleep(800);
    expect(client.acks.filter((a) => a.sequenceNumber === first || a.sequenceNumber === later)).toEqual([]);
    await client.until(() => client.acks.some((a) => a.sequenceNumber === first), 3_000, 'the ack after the block');
    const ackedAt = client.acks.find((a) => a.sequenceNumber === first)!.atMs;
    expect(ackedAt - blockedAt).toBeGreaterThanOrEqual(1_100);
    expect(client.acks.some((a) => a.sequenceNumber === later)).toBe(true);
    expect(env.sandbox.traffic(client.sessionId)!.readerBlockedMs).toBeGreaterThanOrEqual(900);
  });

  it('acknowledges out-of-order messages on receipt and duplicates again; ignores unknown types and bad digests', async () => {
    const client = await connect({ port: '7' });
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    await sleep(50);
    const base = client.send(PayloadType.Output, Buffer.from('a'));
    client.send(PayloadType.Output, Buffer.from('c'), base + 2); // a gap at base + 1
    await client.until(() => client.acks.some((a) => a.sequenceNumber === base + 2), 2_000, 'the out-of-order ack');
    client.send(PayloadType.Output, Buffer.from('a'), base); // a duplicate
    await client.until(() => client.acks.filter((a) => a.sequenceNumber === base).length === 2, 2_000, 'the duplicate re-acknowledged');
    // An unknown message type and a payload whose digest is wrong: the agent reads on.
    const unknown = encodeAgentMessage({ messageType: MessageType.StartPublication, schemaVersion: SCHEMA_VERSION, createdDate: Date.now(), sequenceNumber: 0, flags: MessageFlags.Ack, messageId: '00000000-0000-4000-8000-000000000000', payloadType: 0, payload: Buffer.alloc(0) });
    unknown.write('agent_task_reply'.padEnd(32, ' '), 4, 'latin1');
    client.sendRaw(unknown);
    // The gap filled by a message whose digest is wrong: the agent does not check it.
    const gapFill = base + 1;
    const corrupt = encodeAgentMessage({ messageType: MessageType.InputStreamData, schemaVersion: SCHEMA_VERSION, createdDate: Date.now(), sequenceNumber: gapFill, flags: MessageFlags.Data, messageId: '00000000-0000-4000-8000-000000000001', payloadType: PayloadType.Output, payload: Buffer.from('b') });
    corrupt[80] = corrupt[80]! ^ 0xff;
    client.sendRaw(corrupt);
    await client.until(() => client.acks.some((a) => a.sequenceNumber === gapFill), 2_000, 'the gap filled');
    expect(env.sandbox.traffic(client.sessionId)!.unknownTypesReceived).toBe(1);
    await client.until(() => Buffer.concat(client.output).toString() === 'abc', 2_000, 'echo of abc in order');
  });

  it('refuses stream data that arrives before the plugin is ready, without an ack', async () => {
    const client = await connect({ port: '7' }, slowStart);
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    const seq = client.send(PayloadType.Output, Buffer.from('early'));
    await sleep(300);
    expect(client.acks.some((a) => a.sequenceNumber === seq)).toBe(false);
    expect(slowStart.sandbox.traffic(client.sessionId)!.notReadyRefusals).toBeGreaterThanOrEqual(1);
    await sleep(500);
    client.send(PayloadType.Output, Buffer.from('early'), seq); // the client's resend
    await client.until(() => client.acks.some((a) => a.sequenceNumber === seq), 2_000, 'the ack once ready');
    await client.until(() => Buffer.concat(client.output).toString() === 'early', 2_000, 'the echo');
  });

  it('acknowledges and drops stream data sent before the handshake completes', async () => {
    const client = await connect({ port: '7', handshake: false });
    await client.until(() => client.arrivals(0).length > 0, 5_000, 'HandshakeRequest');
    const seq = client.send(PayloadType.Output, Buffer.from('too early'));
    await client.until(() => client.acks.some((a) => a.sequenceNumber === seq), 2_000, 'the ack');
    expect(env.sandbox.traffic(client.sessionId)!.messagesFromClient).toBe(1);
  });
});

describe('port plugin shapes (port.go GetSession, port_basic.go, port_mux.go)', () => {
  it('basic mode dials the destination when the plugin starts, before any data', async () => {
    const before = basicConnections;
    const client = await connect({ target: OLD_BASIC, documentName: 'AWS-StartPortForwardingSession', port: '11' });
    await client.until(() => basicConnections > before, 3_000, 'the dial at plugin start');
    expect(client.received.filter((r) => r.msg.payloadType === PayloadType.Output)).toEqual([]);
    client.send(PayloadType.Output, Buffer.from('ping'));
    await client.until(() => Buffer.concat(client.output).toString() === 'ping', 2_000, 'the echo');
    // DisconnectToPort closes it; the next data dials again.
    client.send(PayloadType.Flag, encodeFlag(FlagValue.DisconnectToPort));
    await sleep(100);
    client.send(PayloadType.Output, Buffer.from('pong'));
    await client.until(() => Buffer.concat(client.output).toString() === 'pingpong', 2_000, 'the echo after a redial');
    expect(basicConnections - before).toBe(2);
  });

  it('basic mode ends the session when its first dial fails, and never sends ConnectToPortError', async () => {
    const client = await connect({ target: OLD_BASIC, documentName: 'AWS-StartPortForwardingSession', port: '12' });
    await client.until(() => client.channelClosed !== undefined, 5_000, 'channel_closed');
    expect(client.channelClosed!.output).toMatch(/Unable to connect to specified port/);
    expect(client.received.some((r) => r.msg.payloadType === PayloadType.Flag)).toBe(false);
  });

  it('a client older than 1.1.70 gets basic mode from a current agent', async () => {
    const before = basicConnections;
    const client = await connect({ documentName: 'AWS-StartPortForwardingSession', port: '11', clientVersion: '1.1.61.0' });
    await client.until(() => basicConnections > before, 3_000, 'the dial at plugin start');
    client.send(PayloadType.Output, Buffer.from('raw bytes, no smux'));
    await client.until(() => Buffer.concat(client.output).toString() === 'raw bytes, no smux', 2_000, 'the echo');
  });

  it('multiplexed: a refused dial sends ConnectToPortError and a FIN; a FIN from the client closes the destination', async () => {
    const client = await connect({ documentName: 'AWS-StartPortForwardingSession', port: '12' });
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    await sleep(50);
    client.send(PayloadType.Output, encodeFrame({ cmd: SmuxCommand.Syn, streamId: 3 }));
    await client.until(() => client.received.some((r) => r.msg.payloadType === PayloadType.Flag), 3_000, 'ConnectToPortError');
    const flag = client.received.find((r) => r.msg.payloadType === PayloadType.Flag)!;
    expect(flag.msg.payload.readUInt32BE(0)).toBe(FlagValue.ConnectToPortError);
    await client.until(() => smuxFrames(client).some((f) => f.cmd === SmuxCommand.Fin && f.streamId === 3), 2_000, 'the FIN');
  });
});

/** smux frames in the Output bytes the client received so far. */
function smuxFrames(client: RawDataChannel): SmuxFrame[] {
  const frames: SmuxFrame[] = [];
  const parser = new FrameParser((f) => frames.push({ ...f, data: Buffer.from(f.data) }));
  for (const chunk of client.output) parser.push(chunk);
  return frames;
}

describe('smux keep-alive by agent and client version (port_mux.go, xtaci/smux keepalive)', () => {
  // [agent, client, keep-alive on]
  const matrix: Array<[string, string, boolean]> = [
    ['3.0.222.0', '1.2.694.0', true],
    ['3.1.1374.0', '1.2.694.0', true],
    ['3.1.1446.0', '1.2.331.0', false],
    ['3.1.1476.0', '1.2.694.0', true],
    ['3.1.1511.0', '1.2.694.0', true],
    ['3.1.1575.0', '1.2.694.0', false],
    ['3.1.1575.0', '1.2.331.0', true],
    ['3.3.2746.0', '1.2.694.0', false],
    ['3.3.2746.0', '1.2.331.0', true],
  ];
  for (const [agent, clientVersion, on] of matrix) {
    it(`agent ${agent}, client ${clientVersion}: keep-alive ${on ? 'on' : 'off'}`, async () => {
      const client = await connect({ target: versionTarget(agent), documentName: 'AWS-StartPortForwardingSession', port: '7', clientVersion });
      await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
      await sleep(600);
      const nops = smuxFrames(client).filter((f) => f.cmd === SmuxCommand.Nop).length;
      if (on) expect(nops).toBeGreaterThanOrEqual(2);
      else expect(nops).toBe(0);
    });
  }
});

describe("the official client's known weaknesses reproduce (SPEC §8)", () => {
  it('after a lost ack and a lost message, a client that does not re-acknowledge duplicates stalls for good', async () => {
    // Each case: the ack of message 5 is lost, and message 10's first arrival is lost.
    const run = async (ackPolicy: 'official' | 'all'): Promise<RawDataChannel> => {
      const client = await connect({ port: '9', ackPolicy });
      client.loseAckOf.add(5);
      client.loseArrivalOf.add(10);
      await sleep(2_500);
      return client;
    };
    const official = await run('official');
    // The agent resends only its oldest unacknowledged message, 5, which the official client treats as a
    // duplicate and never acknowledges again: 10 never comes back and nothing after 9 is delivered.
    expect(official.expected).toBe(10);
    expect(official.arrivals(5).length).toBeGreaterThan(5);
    expect(official.arrivals(10)).toHaveLength(1);
    const fixed = await run('all');
    // Re-acknowledging the duplicate lets the agent move on to 10.
    expect(fixed.arrivals(10).length).toBeGreaterThanOrEqual(2);
    expect(fixed.expected).toBeGreaterThan(1000);
  });
});

describe('heartbeat and the service (websocketchannel.go, datachannel.go Reconnect; the gateway)', () => {
  let beats: Awaited<ReturnType<typeof startTestSandbox>>;
  beforeAll(async () => {
    beats = await startTestSandbox({ [CURRENT]: { ports: { '7': `127.0.0.1:${echo.port}`, '9': `127.0.0.1:${burst.port}` } } }, { agent: { heartbeat: { pingIntervalMs: 300, pongWaitMs: 500 } } });
  });
  afterAll(async () => beats?.close());

  const controls = (client: RawDataChannel): string[] =>
    client.received.filter((r) => r.msg.messageType === MessageType.PausePublication || r.msg.messageType === MessageType.StartPublication).map((r) => r.msg.messageType);

  it('a heartbeat timeout on the agent side: the agent reconnects, the client sees pause_publication then start_publication', async () => {
    const client = await connect({ port: '7' }, beats);
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    beats.sandbox.gateway.applySessionFault(client.sessionId, { kind: 'agent-heartbeat-timeout' });
    await client.until(() => controls(client).length >= 2, 2_000, 'pause and start');
    expect(controls(client)).toEqual([MessageType.PausePublication, MessageType.StartPublication]);
    expect(beats.sandbox.traffic(client.sessionId)!.agentReconnects).toBe(1);
    // The session goes on: data sent after the reconnect is echoed.
    client.send(PayloadType.Output, Buffer.from('still here'));
    await client.until(() => Buffer.concat(client.output).toString() === 'still here', 3_000, 'the echo after the reconnect');
  });

  it('a reader blocked past its read deadline misses the pong: the agent reconnects', async () => {
    const client = await connect({ port: '7' }, beats);
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    beats.sandbox.gateway.applySessionFault(client.sessionId, { kind: 'block-destination', ms: 1_500 });
    client.send(PayloadType.Output, Buffer.from('x'));
    await client.until(() => controls(client).length >= 2, 4_000, 'pause and start after the block');
    expect(beats.sandbox.traffic(client.sessionId)!.agentReconnects).toBeGreaterThanOrEqual(1);
  });

  it('acks withheld by the service for a while arrive late, and the agent keeps sending meanwhile', async () => {
    const client = await connect({ port: '7' });
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    // Through the control API, as a user's test would.
    const route = `${env.sandbox.endpoint}/_sandbox/sessions/${client.sessionId}/withhold-acks`;
    expect((await fetch(route, { method: 'POST', body: JSON.stringify({ ms: 'soon' }) })).status).toBe(400);
    expect((await fetch(route, { method: 'POST', body: JSON.stringify({ ms: 800 }) })).status).toBe(202);
    const at = Date.now();
    const seq = client.send(PayloadType.Output, Buffer.from('echo me'));
    await client.until(() => Buffer.concat(client.output).toString() === 'echo me', 2_000, 'the echo, not held');
    expect(Date.now() - at).toBeLessThan(500);
    expect(client.acks.some((a) => a.sequenceNumber === seq)).toBe(false);
    await client.until(() => client.acks.some((a) => a.sequenceNumber === seq), 2_000, 'the late ack');
    expect(client.acks.find((a) => a.sequenceNumber === seq)!.atMs - at).toBeGreaterThanOrEqual(700);
  });
});

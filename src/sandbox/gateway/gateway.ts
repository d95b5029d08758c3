import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { Transport } from '../../channel/transport.js';
import { ProtocolError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import {
  decodeOpenDataChannelInput,
  encodeAgentMessage,
  encodeChannelClosed,
  MessageFlags,
  MessageType,
  PayloadType,
  SCHEMA_VERSION,
  type PortSessionProperties,
} from '../../protocol/index.js';
import type { AgentLink } from '../agent/agent-data-channel.js';
import { AGENT_END_REASON, AgentSession } from '../agent/agent-session.js';
import type { ResolveDestination } from '../agent/dialer.js';
import { FaultInjectingTransport, newFaultCounters, type ConnectionFaults, type FaultCounters } from './fault-injecting-transport.js';

/** What the gateway needs to know about a session from the API side. */
export interface GatewaySessionInfo {
  sessionId: string;
  targetId: string;
  agentVersion: string;
  properties: PortSessionProperties;
  resolveDestination: ResolveDestination;
}

/** The gateway's view of the session store (the sandbox registry implements it). */
export interface GatewaySessionStore {
  /** The session when `token` is its current token and it is not terminated. */
  authorize(sessionId: string, token: string): GatewaySessionInfo | undefined;
  exists(sessionId: string): boolean;
  connected(sessionId: string): void;
  disconnected(sessionId: string): void;
  /**
   * The agent, or the service on its behalf (idle timeout), ended the session: `reason` for the record,
   * `output` (default: the reason) for the client's channel_closed.
   */
  ended(sessionId: string, reason: string, output?: string): void;
}

export interface GatewayFaults extends ConnectionFaults {
  /** The agent's dials of destinations fail (ConnectToPortError in multiplexed mode). */
  refuseDestination: boolean;
  /** Corrupt the digest of this many upcoming agent→client frames. */
  corruptDigestNext: number;
}

/** Timed faults aimed at one session (control API `POST /_sandbox/sessions/<id>/<fault>`). */
export type SessionFault =
  | { kind: 'block-destination'; ms: number }
  | { kind: 'withhold-acks'; ms: number }
  | { kind: 'agent-heartbeat-timeout' }
  /** The service tells the client to stop sending (pause_publication), and never says start. */
  | { kind: 'pause-client' }
  /** The agent ends the session as when its plugin exits (PrepareToCloseChannel, then channel_closed). */
  | { kind: 'agent-end' };

export interface GatewayAgentOptions {
  /** Agent-like 1 ms sleep after each message; default true. */
  paced?: boolean;
  pluginStartDelayMs?: number;
  smuxKeepAlive?: { intervalMs: number; timeoutMs: number };
  heartbeat?: { pingIntervalMs: number; pongWaitMs: number };
}

export interface GatewayOptions {
  store: GatewaySessionStore;
  faults: () => GatewayFaults;
  /** Called to consume one corruption credit. */
  takeCorruption: () => boolean;
  random: () => number;
  agent?: GatewayAgentOptions;
  logger?: Logger;
  /** How long a new WebSocket may take to send OpenDataChannelInput. */
  openTimeoutMs?: number;
  /** The service's idle session timeout: no new stream data either way for this long ends the session. Off when absent. */
  idleSessionTimeoutMs?: number;
}

/** Per-session counters the sandbox reports. */
export interface SessionTraffic extends FaultCounters {
  /** Data-channel WebSockets accepted with a valid token, and those after the first. */
  connections: number;
  reconnects: number;
  /** Stream messages the agent sent / took in order (SPEC §5), resends excluded, and their payload bytes. */
  messagesToClient: number;
  messagesFromClient: number;
  payloadBytesToClient: number;
  /** Of those, the bytes the client has acknowledged. */
  payloadBytesAckedByClient: number;
  payloadBytesFromClient: number;
  acksSent: number;
  acksReceived: number;
  resends: number;
  duplicatesReceived: number;
  malformedReceived: number;
  /** The agent's messages kept unacknowledged now, and the most at once. */
  unacknowledged: number;
  maxUnacknowledged: number;
  /** In-order stream data refused because the plugin was not ready (no ack). */
  notReadyRefusals: number;
  /** Out-of-order messages dropped because the agent's 100,000-slot buffer was full. */
  incomingBufferDrops: number;
  unknownTypesReceived: number;
  /** Time the agent's reader spent blocked behind its plugin or a full connection. */
  readerBlockedMs: number;
  /** The agent's own reconnects (heartbeat timeouts), and frames lost with its old connection. */
  agentReconnects: number;
  framesLostAtReconnect: number;
  /** Client frames the gateway dropped because the agent was away. */
  framesDroppedAgentAway: number;
  pausePublicationsSent: number;
  startPublicationsSent: number;
  /** Times the gateway stopped reading the client's WebSocket because the agent's reader was behind. */
  clientReadPauses: number;
}

export function newTrafficCounters(): SessionTraffic {
  return {
    ...newFaultCounters(),
    connections: 0,
    reconnects: 0,
    messagesToClient: 0,
    messagesFromClient: 0,
    payloadBytesToClient: 0,
    payloadBytesAckedByClient: 0,
    payloadBytesFromClient: 0,
    acksSent: 0,
    acksReceived: 0,
    resends: 0,
    duplicatesReceived: 0,
    malformedReceived: 0,
    unacknowledged: 0,
    maxUnacknowledged: 0,
    notReadyRefusals: 0,
    incomingBufferDrops: 0,
    unknownTypesReceived: 0,
    readerBlockedMs: 0,
    agentReconnects: 0,
    framesLostAtReconnect: 0,
    framesDroppedAgentAway: 0,
    pausePublicationsSent: 0,
    startPublicationsSent: 0,
    clientReadPauses: 0,
  };
}

/**
 * What the gateway holds toward the client before the agent's write blocks (its TCP connection to the service
 * and the service's to the client). Not knowable from the agent source; a decision (docs/sandbox.md).
 */
export const CLIENT_SEND_HIGH_WATER_BYTES = 512 * 1024;
/** What the gateway takes from the client while the agent's reader is behind, before it stops reading. */
export const AGENT_READER_BACKLOG_BYTES = 512 * 1024;
/** Largest frame accepted from a client (1 KiB payloads are 1,144 bytes); caps the pre-authentication frame too. */
export const MAX_CLIENT_FRAME_BYTES = 1024 * 1024;
/** The reason an idle-timed-out session carries in the registry. */
export const IDLE_TIMEOUT_REASON = 'idle timeout';
/**
 * The channel_closed Output the service sends at the idle timeout: the session-manager-plugin prints
 * "SessionId: <id> : <Output>" (streaming.go), and users report that line with this text (aws/amazon-ssm-agent#261).
 */
export const IDLE_TIMEOUT_OUTPUT = 'Your session timed out due to inactivity and has been terminated.';

interface LiveSession {
  info: GatewaySessionInfo;
  agent: AgentSession;
  client: ClientSocket | undefined;
  counters: FaultCounters;
  gateway: SessionTraffic;
  connections: number;
  agentAway: boolean;
  withholdAcksUntilMs: number;
  heldAcks: Buffer[];
  writableWaiters: Array<() => void>;
  /** When new stream data last went either way (idle timeout), and the highest sequence number seen each way. */
  lastDataAtMs: number;
  maxSequenceToClient: number;
  maxSequenceFromClient: number;
  idleTimer: NodeJS.Timeout | undefined;
}

const DATA_CHANNEL_PATH = /^\/v1\/data-channel\/([^/?]+)$/;

/**
 * The message gateway: accepts data-channel WebSockets, checks OpenDataChannelInput's token, and relays frames
 * between the client and the session's emulated agent — the same agent across client reconnects (SPEC §6). It
 * tells the agent to pause while the client is away and the client to pause while the agent is away.
 */
export class Gateway {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_CLIENT_FRAME_BYTES, autoPong: false });
  private readonly live = new Map<string, LiveSession>();
  /** The last counters of sessions that ended: the control API reports them after the end too. */
  private readonly endedTraffic = new Map<string, SessionTraffic>();
  private readonly options: GatewayOptions;
  private readonly logger: Logger;

  constructor(options: GatewayOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.wss.on('error', () => {});
  }

  /** Handle an HTTP upgrade request; returns false when the path is not a data channel. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    socket.on('error', () => {});
    let sessionId: string;
    try {
      const match = DATA_CHANNEL_PATH.exec(new URL(req.url ?? '/', 'http://sandbox').pathname);
      if (!match) return false;
      sessionId = decodeURIComponent(match[1]!);
    } catch {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return true;
    }
    if (!this.options.store.exists(sessionId)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, sessionId));
    return true;
  }

  /** Counters of a session: live, or as they were when it ended; undefined for a session never connected. */
  traffic(sessionId: string): SessionTraffic | undefined {
    const live = this.live.get(sessionId);
    if (!live) return this.endedTraffic.get(sessionId);
    const s = live.agent.stats;
    return {
      ...live.gateway,
      ...live.counters,
      connections: live.connections,
      reconnects: Math.max(0, live.connections - 1),
      messagesToClient: s.messagesSent,
      messagesFromClient: s.messagesReceived,
      payloadBytesToClient: s.payloadBytesSent,
      payloadBytesAckedByClient: s.payloadBytesAcknowledged,
      payloadBytesFromClient: s.payloadBytesReceived,
      acksSent: s.acksSent,
      acksReceived: s.acksReceived,
      resends: s.resends,
      duplicatesReceived: s.duplicatesReceived,
      malformedReceived: s.malformedReceived,
      unacknowledged: live.agent.channel.unacknowledged,
      maxUnacknowledged: s.maxUnacknowledged,
      notReadyRefusals: s.notReadyRefusals,
      incomingBufferDrops: s.incomingBufferDrops,
      unknownTypesReceived: s.unknownTypesReceived,
      readerBlockedMs: s.readerBlockedMs,
      agentReconnects: s.agentReconnects,
      framesLostAtReconnect: s.framesLostAtReconnect,
    };
  }

  /** Cut the current WebSocket of a session (fault injection); the session survives for a resume. */
  drop(sessionId: string): boolean {
    const client = this.live.get(sessionId)?.client;
    if (!client) return false;
    client.transport.terminate();
    return true;
  }

  /** Apply a timed fault to one session; false when the session has no agent yet. */
  applySessionFault(sessionId: string, fault: SessionFault): boolean {
    const live = this.live.get(sessionId);
    if (!live) return false;
    switch (fault.kind) {
      case 'block-destination':
        live.agent.gate.block(fault.ms);
        return true;
      case 'withhold-acks': {
        live.withholdAcksUntilMs = Date.now() + fault.ms;
        setTimeout(() => this.releaseAcks(live), fault.ms).unref();
        return true;
      }
      case 'agent-heartbeat-timeout':
        live.agent.channel.expireReadDeadline();
        return true;
      case 'pause-client':
        this.sendControl(live, MessageType.PausePublication);
        return true;
      case 'agent-end':
        live.agent.end(AGENT_END_REASON, '');
        return true;
    }
  }

  /** The session is over (TerminateSession, expiry, agent end): tell the client and release everything. */
  terminate(sessionId: string, reason: string): void {
    const live = this.live.get(sessionId);
    if (!live) return;
    this.endedTraffic.set(sessionId, this.traffic(sessionId)!);
    this.live.delete(sessionId);
    if (live.idleTimer) clearTimeout(live.idleTimer);
    live.idleTimer = undefined;
    live.agent.close();
    this.wakeWriters(live);
    const client = live.client;
    live.client = undefined;
    if (client?.transport.isOpen) {
      client.transport.sendBinary(channelClosedFrame(sessionId, live.info.targetId, reason));
      // Give the frame a moment to leave before the close frame.
      setTimeout(() => client.transport.close(1000, 'session terminated'), 20).unref();
    }
  }

  close(): void {
    for (const id of [...this.live.keys()]) this.terminate(id, 'sandbox shutting down');
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private onConnection(ws: WebSocket, sessionId: string): void {
    ws.on('error', () => {}); // a malformed frame closes the socket; it must never crash the sandbox
    ws.on('ping', (data: Buffer) => {
      if (ws.readyState === WebSocket.OPEN && !this.options.faults().blackhole) ws.pong(data);
    });
    const timer = setTimeout(() => ws.close(1008, 'OpenDataChannelInput not received'), this.options.openTimeoutMs ?? 10_000);
    timer.unref();
    ws.once('close', () => clearTimeout(timer));
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      clearTimeout(timer);
      if (isBinary) {
        ws.close(1008, 'the first frame must be OpenDataChannelInput text');
        return;
      }
      let token: string;
      try {
        token = decodeOpenDataChannelInput(data.toString('utf8')).TokenValue;
      } catch (err) {
        ws.close(1008, err instanceof ProtocolError ? 'malformed OpenDataChannelInput' : 'bad request');
        return;
      }
      const info = this.options.store.authorize(sessionId, token);
      if (!info) {
        this.logger.debug({ sessionId }, 'data channel rejected: invalid or stale token');
        ws.close(1008, 'invalid token');
        return;
      }
      this.join(ws, info);
    });
  }

  private join(ws: WebSocket, info: GatewaySessionInfo): void {
    let live = this.live.get(info.sessionId);
    if (live === undefined) live = this.createSession(info);
    else if (live.client) {
      // A newer connection replaces the old one (the client resumed before we saw the old one die).
      const old = live.client;
      live.client = undefined;
      old.transport.terminate();
    }
    const session = live;
    const client = new ClientSocket(ws, {
      faults: this.options.faults,
      random: this.options.random,
      takeCorruption: this.options.takeCorruption,
      counters: session.counters,
    });
    session.client = client;
    session.connections++;
    client.transport.on('message', (frame: Buffer, isBinary: boolean) => {
      if (isBinary) this.toAgent(session, client, frame);
    });
    client.transport.on('drain', () => this.wakeWriters(session));
    client.transport.on('close', () => {
      if (session.client !== client) return;
      session.client = undefined;
      this.wakeWriters(session);
      // pause_publication toward the agent: it stops reading its destinations and resending until the client is back.
      session.agent.channel.setPublication(true);
      if (this.live.get(info.sessionId) === session) this.options.store.disconnected(info.sessionId);
    });
    this.options.store.connected(info.sessionId);
    if (session.agentAway) this.sendControl(session, MessageType.PausePublication);
    if (session.connections === 1) session.agent.start();
    else session.agent.channel.setPublication(false); // start_publication toward the agent
  }

  private createSession(info: GatewaySessionInfo): LiveSession {
    const agentOptions = this.options.agent ?? {};
    const sessionId = info.sessionId;
    // Filled in below: the link closes over the session record.
    const session = {} as LiveSession;
    const link: AgentLink = {
      send: (frame) => this.toClient(session, frame),
      whenWritable: () => this.whenClientWritable(session),
      agentAway: (away) => this.onAgentAway(session, away),
    };
    const agent = new AgentSession({
      link,
      agentVersion: info.agentVersion,
      properties: info.properties,
      resolveDestination: info.resolveDestination,
      refuseDestination: () => this.options.faults().refuseDestination,
      paced: agentOptions.paced ?? true,
      ...(agentOptions.pluginStartDelayMs !== undefined ? { pluginStartDelayMs: agentOptions.pluginStartDelayMs } : {}),
      ...(agentOptions.smuxKeepAlive ? { smuxKeepAlive: agentOptions.smuxKeepAlive } : {}),
      ...(agentOptions.heartbeat ? { heartbeat: agentOptions.heartbeat } : {}),
      random: this.options.random,
      logger: this.logger,
    });
    Object.assign(session, {
      info,
      agent,
      client: undefined,
      counters: newFaultCounters(),
      gateway: newTrafficCounters(),
      connections: 0,
      agentAway: false,
      withholdAcksUntilMs: 0,
      heldAcks: [],
      writableWaiters: [],
      lastDataAtMs: Date.now(),
      maxSequenceToClient: -1,
      maxSequenceFromClient: -1,
      idleTimer: undefined,
    } satisfies LiveSession);
    this.live.set(sessionId, session);
    this.armIdleTimer(session);
    agent.on('end', (reason: string, output?: string) => this.options.store.ended(sessionId, reason, output));
    return session;
  }

  // ---- idle timeout (the service's, not the agent's: docs/sandbox.md) ----

  /** One unref'd timer per session, re-armed for the rest of the time when data came meanwhile. */
  private armIdleTimer(session: LiveSession): void {
    const timeoutMs = this.options.idleSessionTimeoutMs;
    if (timeoutMs === undefined) return;
    const wait = Math.max(1, session.lastDataAtMs + timeoutMs - Date.now());
    session.idleTimer = setTimeout(() => {
      session.idleTimer = undefined;
      const sessionId = session.info.sessionId;
      if (this.live.get(sessionId) !== session) return;
      if (Date.now() - session.lastDataAtMs < timeoutMs) return this.armIdleTimer(session);
      this.logger.info({ sessionId, idleMs: Date.now() - session.lastDataAtMs }, 'idle session timeout: the service ends the session');
      this.options.store.ended(sessionId, IDLE_TIMEOUT_REASON, IDLE_TIMEOUT_OUTPUT);
    }, wait);
    session.idleTimer.unref();
  }

  /** A stream-data frame with a payload and a sequence number not seen before resets the idle clock. */
  private noteData(session: LiveSession, frame: Buffer, type: Buffer, toClient: boolean): void {
    if (frame.length <= OFF_PAYLOAD || frame.readUInt32BE(OFF_PAYLOAD_LENGTH) === 0 || !frame.subarray(4, 4 + type.length).equals(type)) return;
    const seq = frame.readInt32BE(OFF_SEQUENCE_NUMBER) * 0x1_0000_0000 + frame.readUInt32BE(OFF_SEQUENCE_NUMBER + 4);
    if (toClient) {
      if (seq <= session.maxSequenceToClient) return;
      session.maxSequenceToClient = seq;
    } else {
      if (seq <= session.maxSequenceFromClient) return;
      session.maxSequenceFromClient = seq;
    }
    session.lastDataAtMs = Date.now();
  }

  // ---- agent → client ----

  /** The agent's write: lost when no client is connected (today's model of the service), else queued. */
  private toClient(session: LiveSession, frame: Buffer): boolean {
    if (this.options.idleSessionTimeoutMs !== undefined) this.noteData(session, frame, OUTPUT_STREAM_TYPE, true);
    const client = session.client;
    if (!client || !client.transport.isOpen) return true;
    if (session.withholdAcksUntilMs > Date.now() && isAcknowledge(frame)) {
      session.heldAcks.push(frame);
      return true;
    }
    return client.transport.sendBinary(frame);
  }

  private whenClientWritable(session: LiveSession): Promise<void> {
    const client = session.client;
    if (!client || !client.transport.isOpen || !client.full) return Promise.resolve();
    return new Promise((resolve) => session.writableWaiters.push(resolve));
  }

  private wakeWriters(session: LiveSession): void {
    const waiters = session.writableWaiters;
    session.writableWaiters = [];
    for (const w of waiters) w();
  }

  private releaseAcks(session: LiveSession): void {
    session.withholdAcksUntilMs = 0;
    const held = session.heldAcks;
    session.heldAcks = [];
    for (const frame of held) this.toClient(session, frame);
  }

  private onAgentAway(session: LiveSession, away: boolean): void {
    session.agentAway = away;
    this.sendControl(session, away ? MessageType.PausePublication : MessageType.StartPublication);
  }

  private sendControl(session: LiveSession, messageType: typeof MessageType.PausePublication | typeof MessageType.StartPublication): void {
    const client = session.client;
    if (!client || !client.transport.isOpen) return;
    if (messageType === MessageType.PausePublication) session.gateway.pausePublicationsSent++;
    else session.gateway.startPublicationsSent++;
    client.transport.sendBinary(controlFrame(messageType));
  }

  // ---- client → agent ----

  private toAgent(session: LiveSession, client: ClientSocket, frame: Buffer): void {
    if (this.options.idleSessionTimeoutMs !== undefined) this.noteData(session, frame, INPUT_STREAM_TYPE, false);
    if (session.agentAway) {
      session.gateway.framesDroppedAgentAway++;
      return;
    }
    session.agent.deliver(frame);
    // TCP backpressure end to end: while the agent's reader is behind, stop reading the client.
    if (session.agent.channel.readerBacklogBytes > AGENT_READER_BACKLOG_BYTES && !client.readPaused) {
      session.gateway.clientReadPauses++;
      client.pauseReading(() => session.agent.channel.readerBacklogBytes <= AGENT_READER_BACKLOG_BYTES / 2 || session.client !== client);
    }
  }
}

/**
 * The gateway's end of one client WebSocket: ws as a Transport (behind the fault injector), send backpressure
 * from bufferedAmount, and a read pause polled until the agent has caught up.
 */
class ClientSocket extends EventEmitter implements Transport {
  readonly transport: FaultInjectingTransport;
  readPaused = false;
  private waitingForDrain = false;
  private pauseTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly ws: WebSocket,
    faultOptions: ConstructorParameters<typeof FaultInjectingTransport>[1],
  ) {
    super();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => this.emit('message', data, isBinary));
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.pauseTimer) clearInterval(this.pauseTimer);
      this.emit('close', code, reason.toString('utf8'));
    });
    this.on('error', () => {});
    this.transport = new FaultInjectingTransport(this, faultOptions);
    this.transport.on('error', () => {});
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get full(): boolean {
    return this.ws.bufferedAmount >= CLIENT_SEND_HIGH_WATER_BYTES;
  }

  sendBinary(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    if (this.ws.bufferedAmount + frame.length < CLIENT_SEND_HIGH_WATER_BYTES) {
      this.ws.send(frame, { binary: true });
      return true;
    }
    this.waitingForDrain = true;
    this.ws.send(frame, { binary: true }, () => this.checkDrained());
    return false;
  }

  /** After a frame sent past the high-water mark has left: drain once the buffer is below it. */
  private checkDrained(): void {
    if (!this.waitingForDrain) return;
    if (this.full && this.isOpen) {
      setTimeout(() => this.checkDrained(), 2).unref();
      return;
    }
    this.waitingForDrain = false;
    this.emit('drain');
  }

  sendText(text: string): void {
    if (this.isOpen) this.ws.send(text);
  }

  close(code = 1000, reason = ''): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  pauseReading(canResume: () => boolean): void {
    this.readPaused = true;
    this.ws.pause();
    this.pauseTimer = setInterval(() => {
      if (!canResume()) return;
      clearInterval(this.pauseTimer);
      this.pauseTimer = undefined;
      this.readPaused = false;
      this.ws.resume();
    }, 5);
    this.pauseTimer.unref();
  }
}

const ACK_TYPE = Buffer.from(MessageType.Acknowledge, 'latin1');
/** The message types (space-padded to their 32 bytes) whose payloads are the session's data. */
const OUTPUT_STREAM_TYPE = Buffer.from(MessageType.OutputStreamData.padEnd(32, ' '), 'latin1');
const INPUT_STREAM_TYPE = Buffer.from(MessageType.InputStreamData.padEnd(32, ' '), 'latin1');
/** Offsets in an agent message (SPEC §3). */
const OFF_SEQUENCE_NUMBER = 48;
const OFF_PAYLOAD_LENGTH = 116;
const OFF_PAYLOAD = 120;

function isAcknowledge(frame: Buffer): boolean {
  return frame.length > 4 + ACK_TYPE.length && frame.subarray(4, 4 + ACK_TYPE.length).equals(ACK_TYPE);
}

function controlFrame(messageType: typeof MessageType.PausePublication | typeof MessageType.StartPublication): Buffer {
  return encodeAgentMessage({
    messageType,
    schemaVersion: SCHEMA_VERSION,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: MessageFlags.Ack,
    messageId: randomUUID(),
    payloadType: PayloadType.Undefined,
    payload: Buffer.alloc(0),
  });
}

function channelClosedFrame(sessionId: string, targetId: string, reason: string): Buffer {
  const messageId = randomUUID();
  return encodeAgentMessage({
    messageType: MessageType.ChannelClosed,
    schemaVersion: SCHEMA_VERSION,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: MessageFlags.Ack,
    messageId,
    payloadType: PayloadType.Output,
    payload: encodeChannelClosed({
      MessageId: messageId,
      CreatedDate: new Date().toISOString(),
      DestinationId: targetId,
      SessionId: sessionId,
      MessageType: MessageType.ChannelClosed,
      SchemaVersion: 1,
      Output: reason,
    }),
  });
}

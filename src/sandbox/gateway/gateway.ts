import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ReliableChannel, WebSocketTransport } from '../../channel/index.js';
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
import { AgentSession } from '../agent/agent-session.js';
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
  /** The agent ended the session. */
  ended(sessionId: string, reason: string): void;
}

export interface GatewayFaults extends ConnectionFaults {
  /** The agent's dials of destinations fail (ConnectToPortError in multiplexed mode). */
  refuseDestination: boolean;
  /** Corrupt the digest of this many upcoming agent→client frames. */
  corruptDigestNext: number;
}

export interface GatewayOptions {
  store: GatewaySessionStore;
  faults: () => GatewayFaults;
  /** Called to consume one corruption credit. */
  takeCorruption: () => boolean;
  random: () => number;
  pacing?: boolean;
  smuxKeepAlive?: { intervalMs: number; timeoutMs: number };
  logger?: Logger;
  /** How long a new WebSocket may take to send OpenDataChannelInput. */
  openTimeoutMs?: number;
}

/** Per-session counters the sandbox reports. */
export interface SessionTraffic extends FaultCounters {
  /** Data-channel WebSockets accepted with a valid token, and those after the first. */
  connections: number;
  reconnects: number;
  /** Stream messages the agent sent / received (SPEC §5), resends excluded, and their payload bytes. */
  messagesToClient: number;
  messagesFromClient: number;
  payloadBytesToClient: number;
  /** Of those, the bytes the client has acknowledged (taken into its custody). */
  payloadBytesAckedByClient: number;
  payloadBytesFromClient: number;
  acksSent: number;
  acksReceived: number;
  resends: number;
  duplicatesReceived: number;
  malformedReceived: number;
}

interface LiveSession {
  info: GatewaySessionInfo;
  channel: ReliableChannel;
  agent: AgentSession;
  transport: FaultInjectingTransport | undefined;
  counters: FaultCounters;
  connections: number;
}

const DATA_CHANNEL_PATH = /^\/v1\/data-channel\/([^/?]+)$/;

/**
 * The message gateway: accepts data-channel WebSockets, checks OpenDataChannelInput's token, and joins
 * each connection to its session's agent-role channel — the same channel across reconnects (SPEC §6).
 */
export class Gateway {
  // Pongs are ours to send (onConnection): a blackholed connection must not answer the client's pings.
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, autoPong: false });
  private readonly live = new Map<string, LiveSession>();
  /** The last counters of sessions that ended: the control API reports them after the end too. */
  private readonly endedTraffic = new Map<string, SessionTraffic>();
  private readonly options: GatewayOptions;
  private readonly logger: Logger;

  constructor(options: GatewayOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
  }

  /** Handle an HTTP upgrade request; returns false when the path is not a data channel. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    const match = DATA_CHANNEL_PATH.exec(path);
    if (!match) return false;
    const sessionId = decodeURIComponent(match[1]!);
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
    const s = live.channel.stats;
    return {
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
    };
  }

  /** Cut the current WebSocket of a session (fault injection); the session survives for a resume. */
  drop(sessionId: string): boolean {
    const transport = this.live.get(sessionId)?.transport;
    if (!transport) return false;
    transport.terminate();
    return true;
  }

  /** The session is over (TerminateSession, expiry, agent end): tell the client and release everything. */
  terminate(sessionId: string, reason: string): void {
    const live = this.live.get(sessionId);
    if (!live) return;
    // A stream session ends when its destination closes: its byte counts are what a test checks afterwards.
    this.endedTraffic.set(sessionId, this.traffic(sessionId)!);
    this.live.delete(sessionId);
    live.agent.close();
    const transport = live.channel.detach() as FaultInjectingTransport | undefined;
    live.channel.close();
    if (transport?.isOpen) {
      transport.sendBinary(channelClosedFrame(sessionId, live.info.targetId, reason));
      // Give the frame a moment to leave before the close frame.
      setTimeout(() => transport.close(1000, 'session terminated'), 20).unref();
    }
  }

  close(): void {
    for (const id of [...this.live.keys()]) this.terminate(id, 'sandbox shutting down');
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private onConnection(ws: WebSocket, sessionId: string): void {
    ws.on('ping', (data: Buffer) => {
      if (ws.readyState === ws.OPEN && !this.options.faults().blackhole) ws.pong(data);
    });
    const timer = setTimeout(() => ws.close(1008, 'OpenDataChannelInput not received'), this.options.openTimeoutMs ?? 10_000);
    timer.unref();
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
    const counters = live?.counters ?? newFaultCounters();
    const transport = new FaultInjectingTransport(new WebSocketTransport(ws), {
      faults: this.options.faults,
      random: this.options.random,
      takeCorruption: this.options.takeCorruption,
      counters,
    });
    if (live === undefined) {
      const channel = new ReliableChannel({ role: 'agent', ...(this.options.pacing ? { resendPolicy: 'oldest-per-tick' as const } : {}) });
      const agent = new AgentSession({
        channel,
        agentVersion: info.agentVersion,
        properties: info.properties,
        resolveDestination: info.resolveDestination,
        refuseDestination: () => this.options.faults().refuseDestination,
        ...(this.options.pacing ? { pacing: true } : {}),
        ...(this.options.smuxKeepAlive ? { smuxKeepAlive: this.options.smuxKeepAlive } : {}),
        logger: this.logger,
      });
      live = { info, channel, agent, transport: undefined, counters, connections: 0 };
      this.live.set(info.sessionId, live);
      const sessionId = info.sessionId;
      agent.on('end', (reason: string) => this.options.store.ended(sessionId, reason));
      channel.on('transport-close', () => {
        const current = this.live.get(sessionId);
        if (current && current.transport && !current.transport.isOpen) {
          current.transport = undefined;
          this.options.store.disconnected(sessionId);
        }
      });
      channel.on('malformed', (err: Error) => this.logger.debug({ sessionId, err: err.message }, 'agent dropped a malformed message'));
      channel.on('close', (err?: Error) => {
        if (err) this.options.store.ended(sessionId, err.message);
      });
    } else if (live.transport) {
      // A newer connection replaces the old one (the client resumed before we saw the old one die).
      const old = live.channel.detach();
      old?.terminate();
    }
    live.transport = transport;
    live.connections++;
    live.channel.attach(transport);
    this.options.store.connected(info.sessionId);
    if (live.connections === 1) live.agent.start();
  }
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

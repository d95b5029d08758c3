import http from 'node:http';
import type net from 'node:net';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeAgentMessage, encodeAgentMessage, encodeHandshakeComplete, MessageFlags, SCHEMA_VERSION, encodeHandshakeRequest, MessageType, PayloadType, type AgentMessage } from '../../src/protocol/index.js';
import { ackFrame, streamFrame } from './agent-frames.js';

/*
 * A scripted SSM API and data channel that can send anything at any stage: the hostile-service fixture. It
 * answers StartSession / ResumeSession / TerminateSession (recording each call), and hands every data-channel
 * connection to a script, which can run a normal handshake and then send well-formed or broken frames.
 * It never checks signatures. Only for tests of the client; the sandbox is the faithful emulator.
 */

export interface HostilePeer {
  ws: WebSocket;
  /** The session this connection is for (from the StreamUrl's path). */
  sessionId: string;
  /** Acknowledge the client's messages (true at first); false holds every ack back, as a stalled agent does. */
  acks: boolean;
  /** Messages the client sent on this connection (decoded; undecodable ones are skipped). */
  received: AgentMessage[];
  /** Send an output_stream_data message with the next sequence number. */
  send(payloadType: number, payload: Buffer): void;
  /** Send raw bytes as one binary frame. */
  sendRaw(frame: Buffer): void;
  /** channel_closed with this Output (the service ending the session, with its reason). */
  closeChannel(output: string): void;
  /** HandshakeRequest for a Port session with these properties; resolves after HandshakeComplete is sent. */
  handshake(properties: Record<string, unknown>, agentVersion?: string): Promise<void>;
}

export interface HostileServiceOptions {
  /** Called for each data-channel WebSocket once OpenDataChannelInput arrived. */
  onConnection(peer: HostilePeer, index: number): void | Promise<void>;
  /**
   * Answer the WebSocket upgrade with this HTTP status instead (e.g. 403, 502), or with these raw bytes (then the
   * socket closes), for the given connection index.
   */
  refuseUpgrade?: (index: number) => number | Buffer | undefined;
  /**
   * Script an API answer instead of the normal one: 'hang' never answers (the request is read, then nothing),
   * an object is sent as the HTTP status and body (JSON, e.g. an AWS error `{ __type, message }`; a string as it is). `index` counts the
   * calls of that action.
   */
  /** The SessionId StartSession gives for a target (default `hostile-1` for all): concurrent sessions apart. */
  sessionIdFor?: (target: string) => string;
  answer?: (action: string, index: number) => 'hang' | { status: number; body: unknown } | undefined;
}

export interface HostileService {
  endpoint: string;
  calls: string[];
  close(): Promise<void>;
}

export async function startHostileService(options: HostileServiceOptions): Promise<HostileService> {
  const calls: string[] = [];
  let connections = 0;
  let upgrades = 0;
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<net.Socket>();
  const callsOf = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '').replace('AmazonSSM.', '');
    calls.push(target);
    const index = callsOf.get(target) ?? 0;
    callsOf.set(target, index + 1);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const host = req.headers.host ?? '127.0.0.1';
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      const scripted = options.answer?.(target, index);
      if (scripted === 'hang') return;
      if (scripted !== undefined) {
        res.statusCode = scripted.status;
        res.end(typeof scripted.body === 'string' ? scripted.body : JSON.stringify(scripted.body));
        return;
      }
      const body = parseBody(Buffer.concat(chunks));
      const sessionId = target === 'StartSession' ? (options.sessionIdFor?.(String(body.Target ?? '')) ?? 'hostile-1') : String(body.SessionId ?? 'hostile-1');
      if (target === 'StartSession' || target === 'ResumeSession') {
        res.end(JSON.stringify({ SessionId: sessionId, TokenValue: randomUUID(), StreamUrl: `ws://${host}/v1/data-channel/${encodeURIComponent(sessionId)}?role=publish_subscribe` }));
      } else res.end(JSON.stringify({ SessionId: sessionId }));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    const index = upgrades++;
    const status = options.refuseUpgrade?.(index);
    if (Buffer.isBuffer(status)) {
      socket.end(status);
      return;
    }
    if (status !== undefined) {
      socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      ws.once('message', () => {
        const peer = makePeer(ws, sessionIdOf(req.url ?? ''));
        void Promise.resolve(options.onConnection(peer, connections++)).catch(() => ws.terminate());
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function parseBody(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function sessionIdOf(path: string): string {
  const m = /^\/v1\/data-channel\/([^?]*)/.exec(path);
  try {
    return m ? decodeURIComponent(m[1]!) : '';
  } catch {
    return '';
  }
}

function makePeer(ws: WebSocket, sessionId: string): HostilePeer {
  let sequence = 0;
  const received: AgentMessage[] = [];
  const waiters: Array<(m: AgentMessage) => void> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return;
    let msg: AgentMessage;
    try {
      msg = decodeAgentMessage(data);
    } catch {
      return;
    }
    received.push(msg);
    if (msg.messageType === MessageType.InputStreamData) {
      if (peer.acks) ws.send(ackFrame(msg));
      for (const w of waiters.splice(0)) w(msg);
    }
  });
  const peer: HostilePeer = {
    ws,
    sessionId,
    acks: true,
    received,
    send(payloadType, payload) {
      ws.send(streamFrame(MessageType.OutputStreamData, sequence++, payloadType, payload));
    },
    sendRaw(frame) {
      ws.send(frame);
    },
    closeChannel(output) {
      const payload = Buffer.from(JSON.stringify({ MessageId: randomUUID(), CreatedDate: new Date().toISOString(), DestinationId: 'i-1', SessionId: 'hostile-1', MessageType: 'channel_closed', SchemaVersion: 1, Output: output }));
      ws.send(encodeAgentMessage({ messageType: MessageType.ChannelClosed, schemaVersion: SCHEMA_VERSION, createdDate: Date.now(), sequenceNumber: 0, flags: MessageFlags.Ack, messageId: randomUUID(), payloadType: PayloadType.Output, payload }));
    },
    async handshake(properties, agentVersion = '3.3.2746.0') {
      const response = new Promise<void>((resolve) => {
        const check = (m: AgentMessage): void => {
          if (m.payloadType === PayloadType.HandshakeResponse) resolve();
          else waiters.push(check);
        };
        waiters.push(check);
      });
      peer.send(PayloadType.HandshakeRequest, encodeHandshakeRequest({ AgentVersion: agentVersion, RequestedClientActions: [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'Port', Properties: properties } }] }));
      await response;
      peer.send(PayloadType.HandshakeComplete, encodeHandshakeComplete({ HandshakeTimeToComplete: 1000, CustomerMessage: '' }));
    },
  };
  return peer;
}

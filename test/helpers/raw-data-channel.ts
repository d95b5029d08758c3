import { randomUUID } from 'node:crypto';
import { SSMClient, StartSessionCommand } from '@aws-sdk/client-ssm';
import WebSocket from 'ws';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { decodeAcknowledge, decodeAgentMessage, decodeChannelClosed, encodeHandshakeResponse, encodeOpenDataChannelInput, MessageType, PayloadType, type AgentMessage } from '../../src/protocol/index.js';
import { ackFrame, streamFrame } from './agent-frames.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** How the scripted client acknowledges what the agent sends. */
export type AckPolicy =
  /** Every stream message, duplicates too (what SPEC §5 asks). */
  | 'all'
  /** Like the official session-manager-plugin: in-order and future messages, never a duplicate. */
  | 'official'
  /** Nothing. */
  | 'none';

export interface RawClientOptions {
  endpoint: string;
  target: string;
  documentName: string;
  parameters: Record<string, string[]>;
  clientVersion?: string;
  ackPolicy?: AckPolicy;
  /** Answer the HandshakeRequest (default true). */
  handshake?: boolean;
}

export interface ReceivedMessage {
  msg: AgentMessage;
  atMs: number;
}

/**
 * A data-channel client written on the codec alone (never on ssm-bridge's reliable channel): it records every
 * frame the agent sends, acknowledges by a chosen policy, delivers Output bytes in order, and sends whatever a
 * test scripts. Used to observe the sandbox agent's own behaviour.
 */
export class RawDataChannel {
  readonly received: ReceivedMessage[] = [];
  readonly acks: Array<{ sequenceNumber: number; atMs: number }> = [];
  /** In-order Output payloads (after the handshake), as the client would hand them on. */
  readonly output: Buffer[] = [];
  expected = 0;
  ackPolicy: AckPolicy;
  channelClosed: { output: string; atMs: number } | undefined;
  handshakeCompleteAtMs: number | undefined;
  sessionId = '';
  /** Sequence numbers whose next ack is skipped (a lost ack), and whose next arrival is ignored (a lost message). */
  readonly loseAckOf = new Set<number>();
  readonly loseArrivalOf = new Set<number>();
  private ws!: WebSocket;
  private nextSequence = 0;
  private readonly future = new Map<number, AgentMessage>();
  private readonly options: RawClientOptions;

  constructor(options: RawClientOptions) {
    this.options = options;
    this.ackPolicy = options.ackPolicy ?? 'all';
  }

  async open(): Promise<void> {
    const ssm = new SSMClient({ endpoint: this.options.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
    try {
      const res = await ssm.send(new StartSessionCommand({ Target: this.options.target, DocumentName: this.options.documentName, Parameters: this.options.parameters }));
      this.sessionId = res.SessionId!;
      this.ws = new WebSocket(res.StreamUrl!, { perMessageDeflate: false });
      this.ws.binaryType = 'nodebuffer';
      await new Promise<void>((resolve, reject) => {
        this.ws.once('open', resolve);
        this.ws.once('error', reject);
      });
      this.ws.on('error', () => {});
      this.ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) this.onFrame(data);
      });
      this.ws.send(
        encodeOpenDataChannelInput({ MessageSchemaVersion: '1.0', RequestId: randomUUID(), TokenValue: res.TokenValue!, ClientId: randomUUID(), ClientVersion: this.options.clientVersion ?? '1.2.694.0' }),
      );
    } finally {
      ssm.destroy();
    }
  }

  close(): void {
    this.ws?.terminate();
  }

  /** Send one input_stream_data message; returns its sequence number. `sequenceNumber` resends an old one. */
  send(payloadType: number, payload: Buffer, sequenceNumber?: number): number {
    const seq = sequenceNumber ?? this.nextSequence++;
    this.ws.send(streamFrame(MessageType.InputStreamData, seq, payloadType, payload));
    return seq;
  }

  /** A raw frame of any kind (an unknown message type, a bad digest, …). */
  sendRaw(frame: Buffer): void {
    this.ws.send(frame);
  }

  /** Acknowledge a received message by hand (e.g. a duplicate the official policy does not ack). */
  ack(msg: AgentMessage): void {
    this.ws.send(ackFrame(msg));
  }

  /** Stream messages received with this sequence number (more than one: resends). */
  arrivals(sequenceNumber: number): ReceivedMessage[] {
    return this.received.filter((r) => r.msg.messageType === MessageType.OutputStreamData && r.msg.sequenceNumber === sequenceNumber);
  }

  streamMessages(): ReceivedMessage[] {
    return this.received.filter((r) => r.msg.messageType === MessageType.OutputStreamData);
  }

  outputBytes(): number {
    return this.output.reduce((n, b) => n + b.length, 0);
  }

  /** Wait (bounded) until `predicate` holds. */
  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private onFrame(frame: Buffer): void {
    const msg = decodeAgentMessage(frame);
    const atMs = Date.now();
    if (msg.messageType === MessageType.Acknowledge) {
      this.acks.push({ sequenceNumber: decodeAcknowledge(msg.payload).AcknowledgedMessageSequenceNumber, atMs });
      return;
    }
    if (msg.messageType === MessageType.ChannelClosed) {
      this.channelClosed = { output: decodeChannelClosed(msg.payload).Output, atMs };
      return;
    }
    this.received.push({ msg, atMs });
    if (msg.messageType !== MessageType.OutputStreamData) return;
    if (this.loseArrivalOf.delete(msg.sequenceNumber)) return;
    const duplicate = msg.sequenceNumber < this.expected;
    if (this.ackPolicy === 'all' || (this.ackPolicy === 'official' && !duplicate)) {
      if (this.loseAckOf.delete(msg.sequenceNumber)) {
        // this ack is "lost"
      } else this.ack(msg);
    }
    if (duplicate) return;
    this.future.set(msg.sequenceNumber, msg);
    for (let next = this.future.get(this.expected); next !== undefined; next = this.future.get(this.expected)) {
      this.future.delete(this.expected);
      this.expected++;
      this.deliver(next);
    }
  }

  private deliver(msg: AgentMessage): void {
    if (msg.payloadType === PayloadType.HandshakeRequest && this.options.handshake !== false) {
      this.send(
        PayloadType.HandshakeResponse,
        encodeHandshakeResponse({
          ClientVersion: this.options.clientVersion ?? '1.2.694.0',
          ProcessedClientActions: [{ ActionType: 'SessionType', ActionStatus: 1, ActionResult: null, Error: '' }],
          Errors: [],
        }),
      );
    } else if (msg.payloadType === PayloadType.HandshakeComplete) {
      this.handshakeCompleteAtMs = Date.now();
    } else if (msg.payloadType === PayloadType.Output) {
      this.output.push(Buffer.from(msg.payload));
    }
  }
}

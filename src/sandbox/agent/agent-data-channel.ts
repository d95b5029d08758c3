import { randomUUID } from 'node:crypto';
import {
  decodeAcknowledge,
  decodeAgentMessageLenient,
  encodeAcknowledge,
  encodeAgentMessage,
  MessageFlags,
  MessageType,
  PayloadType,
  SCHEMA_VERSION,
  type LenientAgentMessage,
} from '../../protocol/index.js';
import { silentLogger, type Logger } from '../../logger.js';
import {
  HEARTBEAT,
  INCOMING_BUFFER_CAPACITY,
  INITIAL_RTO_MS,
  INITIAL_RTTVAR_MS,
  INITIAL_SRTT_MS,
  nextRetransmissionTimeout,
  OUTGOING_BUFFER_CAPACITY,
  RECONNECT,
  RESEND_TICK_MS,
} from './agent-policy.js';

/*
 * The agent's data channel, written from agent/session/datachannel/datachannel.go and
 * agent/session/communicator/websocketchannel.go. It shares the codec with the client and nothing else.
 *
 * - Sending: every stream message is sent at once, acknowledged or not (no window); up to 100,000 are kept for
 *   resend. A resend scheduler ticks every 100 ms and resends only the oldest kept message when it is overdue.
 * - Receiving: one reader handles frames strictly in order. An in-order message is handed to the plugin first
 *   and acknowledged after; when the plugin's write blocks, the reader blocks with it (no acks, no pongs, no
 *   control messages meanwhile). Out-of-order messages are acknowledged and kept (100,000 slots, then dropped
 *   silently); old ones are acknowledged again. Digests are not checked; unknown types are ignored.
 * - Pause: pause_publication stops sending and resending; start_publication, any inbound stream data, any ack
 *   and any reconnect clear it.
 * - Heartbeat: the link to the gateway is pinged every 54 s; a read deadline 60 s after the last pong the reader
 *   processed. On timeout the agent reconnects its data channel; while it is away nothing it sends arrives.
 */

/** The agent's side of its connection to the gateway (the gateway implements it). */
export interface AgentLink {
  /** Queue one frame toward the client. False: the connection is full, as a blocking write would be. */
  send(frame: Buffer): boolean;
  /** Resolves when send may continue (drained, or there is no connection to wait for). */
  whenWritable(): Promise<void>;
  /** The agent's own WebSocket went away (true) or is back (false). */
  agentAway(away: boolean): void;
}

/** What the plugin answers for one in-order stream message (port.go InputStreamMessageHandler). */
export const NOT_READY = Symbol('ErrHandlerNotReady');
export type InputOutcome = undefined | Error | typeof NOT_READY;
export type InputHandler = (msg: LenientAgentMessage) => InputOutcome | Promise<InputOutcome>;

export interface AgentDataChannelOptions {
  link: AgentLink;
  /** Handshake payloads and plugin input: called for every in-order stream message. */
  onInput: InputHandler;
  /** channel_closed from the service: the session is cancelled. */
  onChannelClosed?: () => void;
  heartbeat?: { pingIntervalMs: number; pongWaitMs: number };
  random?: () => number;
  logger?: Logger;
}

export interface AgentChannelStats {
  messagesSent: number;
  payloadBytesSent: number;
  payloadBytesAcknowledged: number;
  messagesReceived: number;
  payloadBytesReceived: number;
  acksSent: number;
  acksReceived: number;
  resends: number;
  duplicatesReceived: number;
  malformedReceived: number;
  unknownTypesReceived: number;
  notReadyRefusals: number;
  incomingBufferDrops: number;
  /** Most messages kept unacknowledged at once. */
  maxUnacknowledged: number;
  /** Time the reader spent blocked on a plugin write or a full connection. */
  readerBlockedMs: number;
  /** Data-channel reconnects after a heartbeat timeout. */
  agentReconnects: number;
  /** Frames the reader had not taken when its connection went away (lost with it). */
  framesLostAtReconnect: number;
}

interface KeptMessage {
  frame: Buffer;
  payloadBytes: number;
  lastSentMs: number;
}

const PONG = Symbol('pong');
type ReaderItem = Buffer | typeof PONG;

export class AgentDataChannel {
  readonly stats: AgentChannelStats = {
    messagesSent: 0,
    payloadBytesSent: 0,
    payloadBytesAcknowledged: 0,
    messagesReceived: 0,
    payloadBytesReceived: 0,
    acksSent: 0,
    acksReceived: 0,
    resends: 0,
    duplicatesReceived: 0,
    malformedReceived: 0,
    unknownTypesReceived: 0,
    notReadyRefusals: 0,
    incomingBufferDrops: 0,
    maxUnacknowledged: 0,
    readerBlockedMs: 0,
    agentReconnects: 0,
    framesLostAtReconnect: 0,
  };
  /** pause_publication received and not cleared yet (datachannel.go `Pause`). */
  paused = false;
  /** The agent's WebSocket is down (between a heartbeat timeout and the reconnect). */
  away = false;
  private readonly options: AgentDataChannelOptions;
  private readonly link: AgentLink;
  private readonly logger: Logger;
  private readonly heartbeat: { pingIntervalMs: number; pongWaitMs: number };
  private nextSequence = 0;
  private expectedSequence = 0;
  /** OutgoingMessageBuffer: insertion order is send order, so the first entry is the oldest. */
  private readonly outgoing = new Map<number, KeptMessage>();
  /** IncomingMessageBuffer: out-of-order messages by sequence number. */
  private readonly incoming = new Map<number, LenientAgentMessage>();
  private rtt = { srttMs: INITIAL_SRTT_MS, rttvarMs: INITIAL_RTTVAR_MS };
  private rtoMs = INITIAL_RTO_MS;
  private readonly queue: ReaderItem[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private reading = false;
  private readDeadlineMs: number;
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(options: AgentDataChannelOptions) {
    this.options = options;
    this.link = options.link;
    this.logger = options.logger ?? silentLogger;
    this.heartbeat = options.heartbeat ?? HEARTBEAT;
    this.readDeadlineMs = this.initialDeadline();
    const resend = setInterval(() => this.resendOldest(), RESEND_TICK_MS);
    const ping = setInterval(() => this.ping(), this.heartbeat.pingIntervalMs);
    // An idle reader still meets its deadline (gorilla's ReadMessage returns the timeout while waiting).
    const deadline = setInterval(() => {
      if (!this.reading && Date.now() > this.readDeadlineMs) this.heartbeatTimeout();
    }, Math.min(1_000, this.heartbeat.pongWaitMs));
    for (const t of [resend, ping, deadline]) {
      t.unref();
      this.timers.push(t);
    }
  }

  /** Messages sent and not acknowledged yet. */
  get unacknowledged(): number {
    return this.outgoing.size;
  }

  /** Bytes the reader has been handed and not processed yet (the gateway bounds it). */
  get readerBacklogBytes(): number {
    return this.queuedBytes;
  }

  /** datachannel.go IsActive: the plugins' send loops only read their source while this is true. */
  get active(): boolean {
    return !this.paused;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
  }

  // ---- sending (SendStreamDataMessage, ResendStreamDataMessageScheduler) ----

  /**
   * Send one stream message. Returns false when the connection is full: a Go caller would be blocked in the
   * write, so the caller awaits `whenWritable()` before its next message.
   */
  sendStreamData(payloadType: number, payload: Buffer): boolean {
    if (this.closed || payload.length === 0) return true; // "Ignoring empty stream data payload"
    const sequenceNumber = this.nextSequence++;
    const frame = encodeAgentMessage({
      messageType: MessageType.OutputStreamData,
      schemaVersion: SCHEMA_VERSION,
      createdDate: Date.now(),
      sequenceNumber,
      flags: sequenceNumber === 0 ? MessageFlags.Syn : MessageFlags.Data,
      messageId: randomUUID(),
      payloadType,
      payload,
    });
    this.stats.messagesSent++;
    // Byte counters count Output payloads only: what the client's application gets.
    const outputBytes = payloadType === PayloadType.Output ? payload.length : 0;
    this.stats.payloadBytesSent += outputBytes;
    let writable = true;
    // Paused: kept but not sent; the resend scheduler sends it later, oldest first (as the agent does).
    if (!this.paused && !this.away) writable = this.link.send(frame);
    if (this.outgoing.size < OUTGOING_BUFFER_CAPACITY) {
      this.outgoing.set(sequenceNumber, { frame, payloadBytes: outputBytes, lastSentMs: Date.now() });
      if (this.outgoing.size > this.stats.maxUnacknowledged) this.stats.maxUnacknowledged = this.outgoing.size;
    }
    return writable;
  }

  whenWritable(): Promise<void> {
    return this.link.whenWritable();
  }

  /** Resolves once every kept message is acknowledged, or after `timeoutMs` (PrepareToCloseChannel). */
  async whenAllAcknowledged(timeoutMs: number, pollMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.outgoing.size > 0 && Date.now() < deadline && !this.closed) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return this.outgoing.size === 0;
  }

  private resendOldest(): void {
    if (this.closed || this.paused) return;
    const first = this.outgoing.entries().next();
    if (first.done) return;
    const kept = first.value[1];
    const now = Date.now();
    if (now - kept.lastSentMs <= this.rtoMs) return;
    if (!this.away) this.link.send(kept.frame);
    kept.lastSentMs = now;
    this.stats.resends++;
  }

  private sendAck(msg: LenientAgentMessage): boolean {
    this.stats.acksSent++;
    if (this.away) return true;
    const frame = encodeAgentMessage({
      messageType: MessageType.Acknowledge,
      schemaVersion: SCHEMA_VERSION,
      createdDate: Date.now(),
      sequenceNumber: 0,
      flags: MessageFlags.Ack,
      messageId: randomUUID(),
      payloadType: 0,
      payload: encodeAcknowledge({
        AcknowledgedMessageType: MessageType.InputStreamData,
        AcknowledgedMessageId: msg.messageId,
        AcknowledgedMessageSequenceNumber: msg.sequenceNumber,
        IsSequentialMessage: true,
      }),
    });
    return this.link.send(frame);
  }

  // ---- the reader (websocketchannel.go listener → dataChannelIncomingMessageHandler) ----

  /** A frame from the gateway, handled after every frame before it. */
  deliver(frame: Buffer): void {
    if (this.closed || this.away) return;
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (!this.reading) void this.read();
  }

  /** The gateway's pause_publication / start_publication for this agent (the client went away / is back). */
  setPublication(paused: boolean): void {
    this.paused = paused;
  }

  /** Force the read deadline to pass now (fault injection: a heartbeat timeout). */
  expireReadDeadline(): void {
    this.readDeadlineMs = 0;
    if (!this.reading) this.heartbeatTimeout();
  }

  private async read(): Promise<void> {
    this.reading = true;
    try {
      while (this.queueHead < this.queue.length && !this.closed) {
        if (Date.now() > this.readDeadlineMs) {
          this.heartbeatTimeout();
          return;
        }
        const item = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as ReaderItem;
        if (item === PONG) {
          this.readDeadlineMs = Date.now() + this.heartbeat.pongWaitMs;
          continue;
        }
        this.queuedBytes -= item.length;
        const pending = this.handleFrame(item);
        if (pending !== undefined) {
          const started = Date.now();
          await pending;
          this.stats.readerBlockedMs += Date.now() - started;
        }
      }
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'agent reader error');
    } finally {
      if (this.queueHead >= this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      this.reading = false;
    }
  }

  private handleFrame(frame: Buffer): Promise<void> | undefined {
    let msg: LenientAgentMessage;
    try {
      msg = decodeAgentMessageLenient(frame);
    } catch (err) {
      // "Cannot deserialize raw message": logged and dropped.
      this.stats.malformedReceived++;
      this.logger.debug({ err: String(err) }, 'agent dropped a message it could not read');
      return undefined;
    }
    switch (msg.messageType) {
      case MessageType.InputStreamData:
        return this.handleStreamData(msg);
      case MessageType.Acknowledge:
        this.handleAck(msg);
        return undefined;
      case MessageType.ChannelClosed:
        this.options.onChannelClosed?.();
        return undefined;
      case MessageType.PausePublication:
        this.paused = true;
        return undefined;
      case MessageType.StartPublication:
        this.paused = false;
        return undefined;
      default:
        this.stats.unknownTypesReceived++; // "Invalid message type received"
        return undefined;
    }
  }

  private handleAck(msg: LenientAgentMessage): void {
    this.paused = false;
    let sequenceNumber: number;
    try {
      sequenceNumber = decodeAcknowledge(msg.payload).AcknowledgedMessageSequenceNumber;
    } catch {
      this.stats.malformedReceived++;
      return;
    }
    this.stats.acksReceived++;
    const kept = this.outgoing.get(sequenceNumber);
    if (kept === undefined) return;
    const next = nextRetransmissionTimeout(this.rtt, Date.now() - kept.lastSentMs);
    this.rtt = next;
    this.rtoMs = next.rtoMs;
    this.stats.payloadBytesAcknowledged += kept.payloadBytes;
    this.outgoing.delete(sequenceNumber);
  }

  private handleStreamData(msg: LenientAgentMessage): Promise<void> | undefined {
    this.paused = false;
    if (msg.sequenceNumber === this.expectedSequence) {
      const outcome = this.options.onInput(msg);
      return outcome instanceof Promise ? outcome.then((o) => this.afterInOrder(msg, o)) : this.afterInOrder(msg, outcome);
    }
    if (msg.sequenceNumber > this.expectedSequence) {
      if (this.incoming.size >= INCOMING_BUFFER_CAPACITY) {
        this.stats.incomingBufferDrops++;
        return undefined;
      }
      if (this.incoming.has(msg.sequenceNumber)) this.stats.duplicatesReceived++;
      const writable = this.sendAck(msg);
      // The frame is a view of a ws buffer that lives as long as we hold it, as the agent holds rawMessage.
      this.incoming.set(msg.sequenceNumber, msg);
      return writable ? undefined : this.link.whenWritable();
    }
    this.stats.duplicatesReceived++;
    return this.sendAck(msg) ? undefined : this.link.whenWritable();
  }

  private afterInOrder(msg: LenientAgentMessage, outcome: InputOutcome): Promise<void> | undefined {
    if (outcome === NOT_READY) {
      // Refused without an ack: the client must resend it.
      this.stats.notReadyRefusals++;
      return undefined;
    }
    if (outcome instanceof Error) {
      this.logger.debug({ err: outcome.message }, 'agent: plugin refused a message (not acknowledged)');
      return undefined;
    }
    this.countReceived(msg);
    const writable = this.sendAck(msg);
    this.expectedSequence++;
    const drain = (): Promise<void> | undefined => this.processBuffered();
    return writable ? drain() : this.link.whenWritable().then(drain);
  }

  /** processIncomingMessageBufferItems: hand on buffered successors (acknowledged when they arrived). */
  private processBuffered(): Promise<void> | undefined {
    for (;;) {
      const next = this.incoming.get(this.expectedSequence);
      if (next === undefined) return undefined;
      const outcome = this.options.onInput(next);
      if (outcome instanceof Promise) {
        return outcome.then((o) => (this.takeBuffered(next, o) ? this.processBuffered() : undefined));
      }
      if (!this.takeBuffered(next, outcome)) return undefined;
    }
  }

  private takeBuffered(msg: LenientAgentMessage, outcome: InputOutcome): boolean {
    if (outcome === NOT_READY || outcome instanceof Error) return false; // stays buffered; the agent returns here
    this.countReceived(msg);
    this.incoming.delete(msg.sequenceNumber);
    this.expectedSequence++;
    return true;
  }

  private countReceived(msg: LenientAgentMessage): void {
    this.stats.messagesReceived++;
    if (msg.payloadType === PayloadType.Output) this.stats.payloadBytesReceived += msg.payload.length;
  }

  // ---- heartbeat and reconnect (websocketchannel.go StartPings / SetReadDeadline, datachannel.go onErrorHandler) ----

  private initialDeadline(): number {
    return Date.now() + this.heartbeat.pongWaitMs + this.heartbeat.pingIntervalMs;
  }

  private ping(): void {
    if (this.closed || this.away) return;
    // The gateway answers at once; the pong waits in line behind whatever the reader has not processed.
    this.queue.push(PONG);
    if (!this.reading) void this.read();
  }

  private heartbeatTimeout(): void {
    if (this.closed || this.away) return;
    this.away = true;
    this.stats.agentReconnects++;
    let lost = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) if (this.queue[i] !== PONG) lost++;
    this.stats.framesLostAtReconnect += lost;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.logger.debug({}, 'agent: read deadline passed; reconnecting its data channel');
    this.link.agentAway(true);
    const random = this.options.random ?? Math.random;
    const delayMs = RECONNECT.initialDelayMs + Math.floor(random() * RECONNECT.jitterMs);
    this.reconnectTimer = setTimeout(() => {
      if (this.closed) return;
      this.away = false;
      this.paused = false; // Reconnect: "dataChannel.Pause = false"
      this.readDeadlineMs = this.initialDeadline();
      this.link.agentAway(false);
    }, delayMs);
    this.reconnectTimer.unref();
  }
}

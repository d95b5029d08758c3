import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { BridgeError, ErrorCode, ProtocolError } from '../errors.js';
import {
  decodeAcknowledge,
  decodeAgentMessage,
  decodeChannelClosed,
  encodeAcknowledge,
  encodeAgentMessage,
  MAX_STREAM_PAYLOAD_BYTES,
  MessageFlags,
  MessageType,
  PayloadType,
  SCHEMA_VERSION,
  type AgentMessage,
  type ChannelClosed,
} from '../protocol/index.js';
import { MessageIdPool } from './message-id-pool.js';
import { RttEstimator } from './rtt-estimator.js';
import type { Transport } from './transport.js';

/** Which end of the data channel this is: the client sends input_stream_data, the agent output_stream_data. */
export type ChannelRole = 'client' | 'agent';

export interface ReliableChannelOptions {
  role: ChannelRole;
  /** Messages sent but not yet acknowledged, at most. */
  maxInFlightMessages?: number;
  /** Messages held (in flight + waiting to be sent) before a writer must wait. */
  maxBufferedMessages?: number;
  /** Out-of-order messages kept while a gap is open; beyond it they are dropped unacknowledged (and resent). */
  maxReorderMessages?: number;
  /**
   * Received bytes `data` may hold for a reader that is behind. Past its high-water mark acks wait (the peer
   * stops at its window); past this, new messages are dropped unacknowledged and resent later, so a peer
   * whose window is huge cannot grow our memory without bound. Default 8 MiB.
   */
  maxHeldReceiveBytes?: number;
  /** Payload bytes per stream message (SPEC §5: 1024 on both official sides). */
  maxPayloadBytes?: number;
  /** Consecutive undecodable frames tolerated before the channel fails with PROTOCOL_ERROR. */
  maxConsecutiveMalformed?: number;
  maxRtoMs?: number;
  /**
   * `all-overdue` (default) resends every overdue message as soon as it is due. `oldest-per-tick` imitates
   * the official agent and client: one message, the oldest overdue, per `resendTickMs` (sandbox pacing mode).
   */
  resendPolicy?: 'all-overdue' | 'oldest-per-tick';
  resendTickMs?: number;
}

export interface ChannelStats {
  messagesSent: number;
  payloadBytesSent: number;
  /** Payload bytes of sent messages the peer has acknowledged: what it has taken into its custody. */
  payloadBytesAcknowledged: number;
  resends: number;
  acksSent: number;
  acksReceived: number;
  messagesReceived: number;
  payloadBytesReceived: number;
  duplicatesReceived: number;
  outOfOrderReceived: number;
  /** New messages dropped unacknowledged because `data` held maxHeldReceiveBytes (the peer resends them). */
  droppedWhileFull: number;
  malformedReceived: number;
  srttMs: number;
  rtoMs: number;
}

/** What an ack names. */
type AckTarget = Pick<AgentMessage, 'messageType' | 'messageId' | 'sequenceNumber'>;

interface OutboundMessage {
  sequenceNumber: number;
  frame: Buffer;
  payloadBytes: number;
  sentAtMs: number;
  deadlineMs: number;
  transmissions: number;
}

/*
 * State machine (one field, transitions only in attach/detach/close):
 *
 *   detached --attach(transport)--> attached --transport close / detach()--> detached
 *       \                              |
 *        \-------- close() -----------+--> closed (final)
 *
 * Sequence numbers, unacknowledged messages, the reorder buffer and the estimator survive detach, so a
 * resumed WebSocket continues both sequences where they stopped (SPEC §6).
 */
type ChannelState = 'detached' | 'attached' | 'closed';

/**
 * The reliable, ordered message channel of SPEC §5, symmetric for client and agent roles.
 *
 * Events: `stream-message` (AgentMessage: every in-order stream message that is not Output data),
 * `channel-closed` (ChannelClosed), `transport-close` (code, reason), `publication` ('paused' | 'started'),
 * `malformed` (ProtocolError), `acknowledged` (every message sent so far is acknowledged), `close` (error?: BridgeError).
 * Output payload bytes flow through `data`, a Duplex with backpressure both ways.
 */
export class ReliableChannel extends EventEmitter {
  readonly role: ChannelRole;
  readonly data: Duplex;
  private state: ChannelState = 'detached';
  private transport: Transport | undefined;
  private readonly outgoingType: MessageType;
  private readonly incomingType: MessageType;

  private readonly maxInFlight: number;
  private readonly maxBuffered: number;
  private readonly maxReorder: number;
  private readonly maxHeldReceiveBytes: number;
  private readonly maxPayloadBytes: number;
  private readonly maxConsecutiveMalformed: number;
  private readonly resendPolicy: 'all-overdue' | 'oldest-per-tick';
  private readonly resendTickMs: number;
  private readonly rtt: RttEstimator;
  private readonly messageIds = new MessageIdPool();

  private nextSendSequence = 0;
  private readonly sendQueue: OutboundMessage[] = [];
  private sendQueueHead = 0;
  private readonly inFlight = new Map<number, OutboundMessage>();
  private transportFull = false;
  private refillScheduled = false;
  private publicationPaused = false;
  private resendTimer: NodeJS.Timeout | undefined;
  private resendTimerDueMs = Infinity;
  /** A `data` write not yet cut into messages in full: the buffer was at maxBufferedMessages. */
  private pendingWrite: { data: Buffer; offset: number; cb: (err?: Error | null) => void } | undefined;

  private expectedSequence = 0;
  private readonly reorderBuffer = new Map<number, AgentMessage>();
  private readablePaused = false;
  /**
   * Acks held back while `data` is over its high-water mark: the messages after the one that filled it, in
   * order. Flow control works through them (the peer's window stops at its oldest unacknowledged message),
   * not by pausing the transport: the peer's acks for our own data arrive on that transport, and a reader
   * that is full must not stop them (an echo through a slow reader deadlocked that way, both windows full).
   */
  private deferredAcks: AckTarget[] = [];
  private consecutiveMalformed = 0;

  private readonly counters = {
    messagesSent: 0,
    payloadBytesSent: 0,
    payloadBytesAcknowledged: 0,
    droppedWhileFull: 0,
    resends: 0,
    acksSent: 0,
    acksReceived: 0,
    messagesReceived: 0,
    payloadBytesReceived: 0,
    duplicatesReceived: 0,
    outOfOrderReceived: 0,
    malformedReceived: 0,
  };

  constructor(options: ReliableChannelOptions) {
    super();
    this.role = options.role;
    this.outgoingType = options.role === 'client' ? MessageType.InputStreamData : MessageType.OutputStreamData;
    this.incomingType = options.role === 'client' ? MessageType.OutputStreamData : MessageType.InputStreamData;
    // 512 KiB in flight: ample for loopback and WAN round trips, and small enough that resending a whole
    // window after a reconnect (both ways, plus acks) fits well inside a connection that lives only 2 MiB.
    this.maxInFlight = options.maxInFlightMessages ?? 512;
    this.maxBuffered = Math.max(options.maxBufferedMessages ?? 1024, this.maxInFlight);
    this.maxReorder = options.maxReorderMessages ?? 4096;
    this.maxHeldReceiveBytes = options.maxHeldReceiveBytes ?? 8 * 1024 * 1024;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_STREAM_PAYLOAD_BYTES;
    this.maxConsecutiveMalformed = options.maxConsecutiveMalformed ?? 64;
    this.resendPolicy = options.resendPolicy ?? 'all-overdue';
    this.resendTickMs = options.resendTickMs ?? 100;
    this.rtt = new RttEstimator(options.maxRtoMs);
    this.data = new Duplex({
      // Keep the local-side buffers small: the channel's own window is where bytes wait.
      readableHighWaterMark: 1024 * 1024,
      writableHighWaterMark: 64 * 1024,
      read: () => this.onDataRead(),
      write: (chunk: Buffer, _enc, cb) => this.onDataWrite([chunk], cb),
      writev: (chunks, cb) => this.onDataWrite(chunks.map((c) => c.chunk as Buffer), cb),
      final: (cb) => {
        this.emit('data-end');
        cb();
      },
    });
  }

  get isAttached(): boolean {
    return this.state === 'attached';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Unacknowledged plus not-yet-sent messages. */
  get bufferedMessages(): number {
    return this.inFlight.size + (this.sendQueue.length - this.sendQueueHead);
  }

  /** Nothing in flight, nothing queued, no writer waiting. */
  private get allAcknowledged(): boolean {
    return this.bufferedMessages === 0 && this.pendingWrite === undefined;
  }

  /**
   * Resolves true once everything written so far (to `data` or as stream messages) is acknowledged; false
   * after `timeoutMs` or when the channel closes first. `acrossReconnects`: keep waiting while the transport
   * is replaced (the owner resumes); otherwise a lost transport ends the wait too (no ack can come then).
   */
  async whenAcknowledged(timeoutMs: number, options: { acrossReconnects?: boolean } = {}): Promise<boolean> {
    const acrossReconnects = options.acrossReconnects ?? false;
    // Bytes still in `data`'s writable buffer become messages first.
    if (this.data.writableLength > 0 && this.data.writable) await new Promise<void>((resolve) => this.data.write(Buffer.alloc(0), () => resolve()));
    if (this.allAcknowledged) return true;
    if (this.state === 'closed' || (this.state !== 'attached' && !acrossReconnects)) return false;
    return new Promise<boolean>((resolve) => {
      const settle = (acknowledged: boolean): void => {
        clearTimeout(timer);
        this.off('acknowledged', onAcknowledged);
        this.off('transport-close', onGone);
        this.off('close', onGone);
        resolve(acknowledged);
      };
      const onAcknowledged = (): void => settle(true);
      const onGone = (): void => settle(false);
      const timer = setTimeout(onGone, timeoutMs);
      this.on('acknowledged', onAcknowledged);
      if (!acrossReconnects) this.on('transport-close', onGone);
      this.on('close', onGone);
    });
  }

  get stats(): ChannelStats {
    return { ...this.counters, srttMs: this.rtt.srttMs, rtoMs: this.rtt.rtoMs };
  }

  /** Start using a connected transport; every unacknowledged message is resent at once. */
  attach(transport: Transport): void {
    switch (this.state) {
      case 'closed':
        throw new BridgeError(ErrorCode.CHANNEL_CLOSED, 'cannot attach a transport to a closed channel');
      case 'attached':
        this.detach();
        break;
      case 'detached':
        break;
    }
    this.state = 'attached';
    this.transport = transport;
    this.transportFull = false;
    transport.on('message', this.onTransportMessage);
    transport.on('drain', this.onTransportDrain);
    transport.on('close', this.onTransportClose);
    transport.on('error', this.onTransportError);
    for (const msg of this.inFlight.values()) msg.deadlineMs = 0;
    this.resendOverdue(Date.now());
    this.flush();
  }

  /** Stop using the current transport (it is not closed here); state is kept for the next attach. */
  detach(): Transport | undefined {
    const transport = this.transport;
    if (this.state !== 'attached' || transport === undefined) return undefined;
    this.state = 'detached';
    transport.off('message', this.onTransportMessage);
    transport.off('drain', this.onTransportDrain);
    transport.off('close', this.onTransportClose);
    transport.off('error', this.onTransportError);
    this.transport = undefined;
    this.clearResendTimer();
    return transport;
  }

  /**
   * Queue one stream message (handshake, flags, or data). It is sent when the window allows and kept until
   * acknowledged. Returns its sequence number.
   */
  sendStreamMessage(payloadType: number, payload: Buffer): number {
    if (this.state === 'closed') throw new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the data channel is closed');
    const sequenceNumber = this.enqueue(payloadType, payload);
    this.flush();
    return sequenceNumber;
  }

  private enqueue(payloadType: number, payload: Buffer): number {
    const sequenceNumber = this.nextSendSequence++;
    const frame = encodeAgentMessage({
      messageType: this.outgoingType,
      schemaVersion: SCHEMA_VERSION,
      createdDate: Date.now(),
      sequenceNumber,
      // The agent marks its first stream message SYN; the official client sends 0 throughout (vectors).
      flags: sequenceNumber === 0 && this.role === 'agent' ? MessageFlags.Syn : MessageFlags.Data,
      messageId: this.messageIds.take(),
      payloadType,
      payload,
    });
    this.sendQueue.push({ sequenceNumber, frame, payloadBytes: payload.length, sentAtMs: 0, deadlineMs: 0, transmissions: 0 });
    return sequenceNumber;
  }

  /** End the channel for good. With an error, `data` is destroyed with it; without, its readable side ends. */
  close(error?: BridgeError): void {
    if (this.state === 'closed') return;
    const transport = this.detach();
    void transport;
    this.state = 'closed';
    this.clearResendTimer();
    this.reorderBuffer.clear();
    this.deferredAcks = [];
    this.sendQueue.length = 0;
    this.sendQueueHead = 0;
    this.inFlight.clear();
    // `data` reports an error only to someone listening for it: the session's closed() promise carries the
    // reason for everyone else, and an unheard 'error' event would crash the process.
    const heard = this.data.listenerCount('error') > 0;
    const write = this.pendingWrite;
    this.pendingWrite = undefined;
    write?.cb(heard ? (error ?? new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the data channel is closed')) : null);
    if (error) this.data.destroy(heard ? error : undefined);
    else if (!this.data.readableEnded) this.data.push(null);
    this.emit('close', error);
  }

  // ---- outbound ----

  private onDataWrite(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    if (this.state === 'closed') {
      cb(new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the data channel is closed'));
      return;
    }
    // Coalesce small writes (keystrokes, writev batches) into full messages.
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.pendingWrite = { data, offset: 0, cb };
    this.fillFromWriter();
  }

  /**
   * Cut the pending write into messages while fewer than maxBufferedMessages are held, so a large write
   * never overshoots the budget; its callback runs (and the writer may continue) once all of it is queued.
   */
  private fillFromWriter(): void {
    const write = this.pendingWrite;
    if (write === undefined) return;
    let room = this.maxBuffered - this.bufferedMessages;
    while (write.offset < write.data.length && room > 0) {
      const end = Math.min(write.offset + this.maxPayloadBytes, write.data.length);
      this.enqueue(PayloadType.Output, write.data.subarray(write.offset, end));
      write.offset = end;
      room--;
    }
    this.flush();
    if (write.offset >= write.data.length && this.pendingWrite === write) {
      this.pendingWrite = undefined;
      write.cb();
    }
  }

  /**
   * Transmit queued messages while the window, the transport and the service allow.
   *
   * The window spans sequence numbers, not a count: nothing is sent beyond the oldest unacknowledged message
   * + maxInFlightMessages. Counting only unacked messages let the span grow without bound behind one lost
   * message, past the peer's reorder buffer, which then dropped everything new unacknowledged, and each of
   * those waited out an exponential backoff (16 MiB at 3% loss: 3 s → 9–15 s).
   */
  private flush(): void {
    if (this.state !== 'attached' || this.publicationPaused || this.transportFull) return;
    if (this.sendQueueHead === this.sendQueue.length) {
      this.sendQueue.length = 0;
      this.sendQueueHead = 0;
      return;
    }
    const now = Date.now();
    // Map iteration follows insertion, i.e. sequence order: the first key is the oldest unacknowledged
    // (and flushing only adds newer ones, so the limit holds for the whole loop).
    const oldest = this.inFlight.size === 0 ? this.sendQueue[this.sendQueueHead]!.sequenceNumber : (this.inFlight.keys().next().value as number);
    const windowEnd = oldest + this.maxInFlight;
    while (this.sendQueueHead < this.sendQueue.length && !this.transportFull) {
      const msg = this.sendQueue[this.sendQueueHead]!;
      if (msg.sequenceNumber >= windowEnd) break;
      this.sendQueue[this.sendQueueHead] = undefined as unknown as OutboundMessage;
      this.sendQueueHead++;
      this.inFlight.set(msg.sequenceNumber, msg);
      this.counters.messagesSent++;
      this.counters.payloadBytesSent += msg.payloadBytes;
      this.transmit(msg, now);
    }
    if (this.sendQueueHead === this.sendQueue.length) {
      this.sendQueue.length = 0;
      this.sendQueueHead = 0;
    } else if (this.sendQueueHead > 4096) {
      this.sendQueue.splice(0, this.sendQueueHead);
      this.sendQueueHead = 0;
    }
  }

  private transmit(msg: OutboundMessage, now: number): void {
    msg.transmissions++;
    msg.sentAtMs = now;
    msg.deadlineMs = now + this.rtt.rtoMs;
    if (!this.transport!.sendBinary(msg.frame)) this.transportFull = true;
    this.armResendTimer(msg.deadlineMs);
  }

  private armResendTimer(dueMs: number): void {
    if (this.resendTimer !== undefined && this.resendTimerDueMs <= dueMs) return;
    this.clearResendTimer();
    this.resendTimerDueMs = dueMs;
    this.resendTimer = setTimeout(this.onResendTimer, Math.max(1, dueMs - Date.now()));
    this.resendTimer.unref();
  }

  private clearResendTimer(): void {
    if (this.resendTimer !== undefined) clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    this.resendTimerDueMs = Infinity;
  }

  private readonly onResendTimer = (): void => {
    this.resendTimer = undefined;
    this.resendTimerDueMs = Infinity;
    if (this.state !== 'attached') return;
    this.resendOverdue(Date.now());
  };

  /** Resend what is overdue (as the policy allows), then arm the timer for the next deadline. */
  private resendOverdue(now: number): void {
    if (this.state !== 'attached') return;
    let nextDue = Infinity;
    let budget = this.resendPolicy === 'oldest-per-tick' ? 1 : Infinity;
    for (const msg of this.inFlight.values()) {
      if (msg.deadlineMs <= now && budget > 0 && !this.transportFull && !this.publicationPaused) {
        budget--;
        this.counters.resends++;
        this.transmit(msg, now);
        // Overdue again and again (peer away or stalled): back off, never beyond the cap.
        msg.deadlineMs = now + Math.min(this.rtt.rtoMs * 2 ** Math.min(msg.transmissions - 1, 6), 1000);
      }
      if (msg.deadlineMs < nextDue) nextDue = msg.deadlineMs;
    }
    if (this.resendPolicy === 'oldest-per-tick' && nextDue < now + this.resendTickMs) nextDue = now + this.resendTickMs;
    // While the transport is full or the service paused us, nothing can be resent: a timer would only spin
    // (an overdue deadline re-arms at 1 ms). 'drain' and start_publication call back in here.
    if (nextDue !== Infinity && !this.transportFull && !this.publicationPaused) this.armResendTimer(nextDue);
  }

  private readonly onTransportDrain = (): void => {
    this.transportFull = false;
    this.resendOverdue(Date.now());
    this.flush();
  };

  // ---- inbound ----

  private readonly onTransportMessage = (frame: Buffer, isBinary: boolean): void => {
    if (!isBinary) {
      this.emit('text', frame.toString('utf8'));
      return;
    }
    let msg: AgentMessage;
    try {
      msg = decodeAgentMessage(frame);
    } catch (err) {
      this.onMalformed(err);
      return;
    }
    try {
      this.onMessage(msg);
      this.consecutiveMalformed = 0;
    } catch (err) {
      this.onMalformed(err);
    }
  };

  private onMalformed(err: unknown): void {
    if (!(err instanceof ProtocolError)) throw err;
    // Dropped unacknowledged: a corrupted message is resent by its sender. Only a stream of garbage is fatal.
    this.counters.malformedReceived++;
    this.consecutiveMalformed++;
    this.emit('malformed', err);
    if (this.consecutiveMalformed >= this.maxConsecutiveMalformed) {
      this.close(new BridgeError(ErrorCode.PROTOCOL_ERROR, `the peer sent ${this.consecutiveMalformed} malformed messages in a row (last: ${err.message})`, { cause: err }));
    }
  }

  private onMessage(msg: AgentMessage): void {
    switch (msg.messageType) {
      case MessageType.Acknowledge:
        this.onAcknowledge(msg);
        return;
      case this.incomingType:
        this.onStreamMessage(msg);
        return;
      case MessageType.ChannelClosed: {
        const closed: ChannelClosed = decodeChannelClosed(msg.payload);
        this.emit('channel-closed', closed);
        return;
      }
      case MessageType.PausePublication:
        this.publicationPaused = true;
        this.emit('publication', 'paused');
        return;
      case MessageType.StartPublication:
        this.publicationPaused = false;
        this.emit('publication', 'started');
        this.resendOverdue(Date.now());
        this.flush();
        return;
      default:
        throw new ProtocolError('messageType', `${msg.messageType} is not expected by the ${this.role} side`);
    }
  }

  private onAcknowledge(msg: AgentMessage): void {
    const ack = decodeAcknowledge(msg.payload);
    this.counters.acksReceived++;
    const acked = this.inFlight.get(ack.AcknowledgedMessageSequenceNumber);
    if (acked === undefined) return; // a repeat ack, or for a message already acknowledged
    this.inFlight.delete(ack.AcknowledgedMessageSequenceNumber);
    this.counters.payloadBytesAcknowledged += acked.payloadBytes;
    if (acked.transmissions === 1) this.rtt.observe(Date.now() - acked.sentAtMs);
    // One refill for all the acks of a received chunk (ws emits them in one synchronous loop): a flush per
    // ack sent one message at a time and cost its fixed work each time.
    if (!this.refillScheduled) {
      this.refillScheduled = true;
      queueMicrotask(this.refillAfterAcks);
    }
    if (this.allAcknowledged) this.emit('acknowledged');
  }

  private readonly refillAfterAcks = (): void => {
    this.refillScheduled = false;
    // A waiting writer first (it flushes).
    if (this.pendingWrite !== undefined) this.fillFromWriter();
    else this.flush();
  };

  private onStreamMessage(msg: AgentMessage): void {
    const seq = msg.sequenceNumber;
    if (seq >= this.expectedSequence && this.data.readableLength >= this.maxHeldReceiveBytes) {
      // Full: no ack, so the peer resends it once the reader has caught up.
      this.counters.droppedWhileFull++;
      return;
    }
    if (seq === this.expectedSequence) {
      if (this.readablePaused) this.deferredAcks.push({ messageType: msg.messageType, messageId: msg.messageId, sequenceNumber: seq });
      else this.sendAck(msg);
      this.deliver(msg);
      this.expectedSequence++;
      // Drain successors that arrived early (each was acknowledged when buffered).
      let next = this.reorderBuffer.get(this.expectedSequence);
      while (next !== undefined && this.state !== 'closed') {
        this.reorderBuffer.delete(this.expectedSequence);
        this.deliver(next);
        this.expectedSequence++;
        next = this.reorderBuffer.get(this.expectedSequence);
      }
    } else if (seq > this.expectedSequence) {
      if (this.reorderBuffer.has(seq)) {
        this.counters.duplicatesReceived++;
        this.sendAck(msg);
      } else if (this.reorderBuffer.size < this.maxReorder) {
        this.counters.outOfOrderReceived++;
        this.reorderBuffer.set(seq, msg);
        this.sendAck(msg);
      }
      // else: no room; leave it unacknowledged so the sender resends it later.
    } else {
      // Already delivered: acknowledge again, or a sender that lost our ack resends forever (SPEC §5) —
      // unless its ack is deferred: that one goes out when the reader catches up.
      this.counters.duplicatesReceived++;
      const firstDeferred = this.deferredAcks[0];
      if (firstDeferred !== undefined && seq >= firstDeferred.sequenceNumber) return;
      this.sendAck(msg);
    }
  }

  private deliver(msg: AgentMessage): void {
    this.counters.messagesReceived++;
    if (msg.payloadType === PayloadType.Output) {
      this.counters.payloadBytesReceived += msg.payload.length;
      if (this.data.readableEnded || this.data.destroyed) return;
      if (!this.data.push(msg.payload)) this.readablePaused = true;
      return;
    }
    this.emit('stream-message', msg);
  }

  private onDataRead(): void {
    if (!this.readablePaused) return;
    this.readablePaused = false;
    const acks = this.deferredAcks;
    this.deferredAcks = [];
    for (const target of acks) this.sendAck(target);
  }

  private sendAck(msg: AckTarget): void {
    const transport = this.transport;
    if (transport === undefined) return;
    const frame = encodeAgentMessage({
      messageType: MessageType.Acknowledge,
      schemaVersion: SCHEMA_VERSION,
      createdDate: Date.now(),
      sequenceNumber: 0,
      flags: MessageFlags.Ack,
      messageId: this.messageIds.take(),
      payloadType: PayloadType.Undefined,
      payload: encodeAcknowledge({
        AcknowledgedMessageType: msg.messageType,
        AcknowledgedMessageId: msg.messageId,
        AcknowledgedMessageSequenceNumber: msg.sequenceNumber,
        IsSequentialMessage: true,
      }),
    });
    this.counters.acksSent++;
    // An ack that cannot be written is harmless: the sender resends and we acknowledge the duplicate.
    if (!transport.sendBinary(frame)) this.transportFull = true;
  }

  private readonly onTransportClose = (code: number, reason: string): void => {
    this.detach();
    this.emit('transport-close', code, reason);
  };

  private readonly onTransportError = (err: Error): void => {
    this.emit('transport-error', err);
  };
}

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
  /**
   * The send window's upper bound in messages. The window itself follows the peer's acknowledgement rate (about
   * a second of acks), between `minInFlightMessages` and this.
   */
  maxInFlightMessages?: number;
  minInFlightMessages?: number;
  /** Messages held (in flight + waiting to be sent) before a writer must wait. */
  maxBufferedMessages?: number;
  /** Out-of-order messages kept while a gap is open, at most (a memory bound; see `maxReorderBytes`). */
  maxReorderMessages?: number;
  /** Payload bytes of out-of-order messages kept, at most; past it new ones are dropped unacknowledged. */
  maxReorderBytes?: number;
  /**
   * Received bytes `data` may hold for a reader that is behind before the channel stops reading its transport
   * (TCP backpressure: the only thing that slows the real agent, which has no send window). Reading resumes once
   * the reader has taken `data` below its high-water mark (1 MiB). Nothing is ever dropped for flow control.
   * Default 8 MiB.
   */
  receiveBudgetBytes?: number;
  /** Payload bytes per stream message (SPEC §5: 1024 on both official sides). */
  maxPayloadBytes?: number;
  /**
   * Undecodable frames tolerated within `malformedWindowMs` before the channel fails with PROTOCOL_ERROR. A
   * window, not a run: a peer that mixes one good message into every 63 bad ones is still a broken peer.
   */
  maxMalformed?: number;
  malformedWindowMs?: number;
  maxRtoMs?: number;
}

export interface ChannelStats {
  messagesSent: number;
  payloadBytesSent: number;
  /** Payload bytes of sent messages the peer has acknowledged: what it has taken into its custody. */
  payloadBytesAcknowledged: number;
  resends: number;
  /** Of those: after evidence of loss (later messages acknowledged), and after a timeout of the oldest. */
  fastResends: number;
  timeoutResends: number;
  acksSent: number;
  acksReceived: number;
  messagesReceived: number;
  payloadBytesReceived: number;
  duplicatesReceived: number;
  outOfOrderReceived: number;
  /** Out-of-order messages dropped because the reorder buffer was at its byte or message bound. */
  droppedReorderFull: number;
  malformedReceived: number;
  /** Messages of a type this side does not use (ignored, as the agent and the official client do). */
  unknownTypesReceived: number;
  /** Times the transport was paused because `data` held receiveBudgetBytes. */
  receivePauses: number;
  /** The send window now, in messages, and the acknowledgement rate it follows. */
  windowMessages: number;
  ackRatePerSecond: number;
  srttMs: number;
  rtoMs: number;
}

/** A gap in what the peer sent: messages beyond it arrived, so it sent these and they never came. */
export interface ReceiveGap {
  missingMessages: number;
  /** Messages held beyond the gap, never delivered. */
  heldMessages: number;
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
  /** Messages sent after this one's last transmission that were acknowledged since: evidence it was lost. */
  laterAcks: number;
}

/** Later acks that make a message count as lost (as TCP's three duplicate acks). */
const LOSS_EVIDENCE_ACKS = 3;
/** Resends on evidence of loss, at most per resend tick; the rest wait for the next tick. */
const FAST_RESENDS_PER_TICK = 256;
/** The resend scheduler's tick: a timed-out oldest message is resent at most once per tick. */
const RESEND_TICK_MS = 100;
/** How often the acknowledgement rate is sampled, and how much of a second of acks the window holds. */
const ACK_RATE_SAMPLE_MS = 250;
const WINDOW_SECONDS = 1;
const INITIAL_WINDOW_MESSAGES = 512;

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
 * The reliable, ordered message channel of SPEC §5, for the client role (the agent role serves symmetric tests
 * and benchmarks; the sandbox's agent has its own, written from the agent source).
 *
 * Receiving: an in-order message is delivered into `data`, then acknowledged. While `data` holds more than
 * `receiveBudgetBytes` for a reader that is behind, the transport stops being read (TCP backpressure) until
 * `data` is below its low-water mark. The real agent sends without a window, so holding acks back would not
 * slow it, and a message we dropped would come back at only ~10 per second; not reading the WebSocket is the
 * one thing that slows it. This cannot deadlock against it: the agent needs no acks to send, and its reader
 * keeps taking our messages. The cost: while we do not read, the peer's acks for our own data wait too, so an
 * upload waits while the download is stalled.
 *
 * Sending: a window of at most about one second of the peer's acknowledgement rate (so what waits in front of a
 * slow agent drains within about a second), resends after evidence of loss (three later messages acknowledged),
 * and, when nothing is acknowledged at all, only the oldest message once per tick with backoff: a stalled peer
 * gets a few messages per second, never a storm. After a reconnect the whole window is resent once.
 *
 * Events: `stream-message` (AgentMessage: every in-order stream message that is not Output data),
 * `channel-closed` (ChannelClosed), `transport-close` (code, reason), `publication` ('paused' | 'started'),
 * `malformed` (ProtocolError), `unknown-type` (type name, first time only), `acknowledged` (every message sent so
 * far is acknowledged), `close` (error?: BridgeError). Output payload bytes flow through `data`.
 */
export class ReliableChannel extends EventEmitter {
  readonly role: ChannelRole;
  readonly data: Duplex;
  private state: ChannelState = 'detached';
  private transport: Transport | undefined;
  private readonly outgoingType: MessageType;
  private readonly incomingType: MessageType;

  private readonly maxInFlight: number;
  private readonly minInFlight: number;
  private readonly maxBuffered: number;
  private readonly maxReorder: number;
  private readonly maxReorderBytes: number;
  private readonly receiveBudgetBytes: number;
  private readonly maxPayloadBytes: number;
  private readonly maxMalformed: number;
  private readonly malformedWindowMs: number;
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
  private fastResendsThisTick = 0;
  /** Sequence numbers to resend once after a reconnect, in order (continued on drain). */
  private replay: number[] = [];
  private replayHead = 0;
  /** The send window in messages, following the peer's ack rate. */
  private window: number;
  private ackRate = 0;
  private acksThisSample = 0;
  private sampleBusy = false;
  private sampleTimer: NodeJS.Timeout | undefined;
  /** A `data` write not yet cut into messages in full: the buffer was at maxBufferedMessages. */
  private pendingWrite: { data: Buffer; offset: number; cb: (err?: Error | null) => void } | undefined;

  private expectedSequence = 0;
  private highestSequenceSeen = -1;
  private readonly reorderBuffer = new Map<number, AgentMessage>();
  private reorderBytes = 0;
  private receivePaused = false;
  /** Malformed frames counted since `malformedWindowStartMs`. */
  private malformedInWindow = 0;
  private malformedWindowStartMs = 0;
  private readonly unknownTypes = new Set<string>();

  private readonly counters = {
    messagesSent: 0,
    payloadBytesSent: 0,
    payloadBytesAcknowledged: 0,
    resends: 0,
    fastResends: 0,
    timeoutResends: 0,
    acksSent: 0,
    acksReceived: 0,
    messagesReceived: 0,
    payloadBytesReceived: 0,
    duplicatesReceived: 0,
    outOfOrderReceived: 0,
    droppedReorderFull: 0,
    malformedReceived: 0,
    unknownTypesReceived: 0,
    receivePauses: 0,
  };

  constructor(options: ReliableChannelOptions) {
    super();
    this.role = options.role;
    this.outgoingType = options.role === 'client' ? MessageType.InputStreamData : MessageType.OutputStreamData;
    this.incomingType = options.role === 'client' ? MessageType.OutputStreamData : MessageType.InputStreamData;
    this.maxInFlight = options.maxInFlightMessages ?? 4096;
    this.minInFlight = Math.min(options.minInFlightMessages ?? 64, this.maxInFlight);
    this.window = Math.min(INITIAL_WINDOW_MESSAGES, this.maxInFlight);
    this.maxBuffered = Math.max(options.maxBufferedMessages ?? 1024, this.maxInFlight);
    this.maxReorder = options.maxReorderMessages ?? 100_000;
    this.maxReorderBytes = options.maxReorderBytes ?? 8 * 1024 * 1024;
    this.receiveBudgetBytes = options.receiveBudgetBytes ?? 8 * 1024 * 1024;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_STREAM_PAYLOAD_BYTES;
    this.maxMalformed = options.maxMalformed ?? 64;
    this.malformedWindowMs = options.malformedWindowMs ?? 10_000;
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
   * What the peer sent that never arrived, known from messages held beyond a gap: undefined when there is no
   * gap. A loss at the very end of the peer's output (nothing after it) cannot be seen.
   */
  get receiveGap(): ReceiveGap | undefined {
    if (this.highestSequenceSeen < this.expectedSequence) return undefined;
    const span = this.highestSequenceSeen - this.expectedSequence + 1;
    return { missingMessages: span - this.reorderBuffer.size, heldMessages: this.reorderBuffer.size };
  }

  /**
   * Resolves true once everything written so far (to `data` or as stream messages) is acknowledged; false
   * after `timeoutMs` or when the channel closes first. `acrossReconnects`: keep waiting while the transport
   * is replaced (the owner resumes); otherwise a lost transport ends the wait too (no ack can come then).
   */
  async whenAcknowledged(timeoutMs: number, options: { acrossReconnects?: boolean } = {}): Promise<boolean> {
    const acrossReconnects = options.acrossReconnects ?? false;
    const deadline = Date.now() + timeoutMs;
    // Bytes still in `data`'s writable buffer become messages first: bounded too, since with the window full
    // (a peer that withholds its acks) that write waits for acks that may never come.
    if (this.data.writableLength > 0 && this.data.writable) {
      let timer: NodeJS.Timeout | undefined;
      const flushed = await Promise.race([
        new Promise<boolean>((resolve) => this.data.write(Buffer.alloc(0), () => resolve(true))),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (!flushed) return false;
    }
    if (this.allAcknowledged) return true;
    timeoutMs = Math.max(0, deadline - Date.now());
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
    return { ...this.counters, windowMessages: this.window, ackRatePerSecond: Math.round(this.ackRate), srttMs: this.rtt.srttMs, rtoMs: this.rtt.rtoMs };
  }

  /** Start using a connected transport: the service's pause is over, and every unacknowledged message is resent once. */
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
    // A pause_publication belonged to the connection it came on (SPEC §5): never stay paused across a reconnect.
    this.publicationPaused = false;
    transport.on('message', this.onTransportMessage);
    transport.on('drain', this.onTransportDrain);
    transport.on('close', this.onTransportClose);
    transport.on('error', this.onTransportError);
    // A new connection starts reading; we pause it again if the reader is still behind.
    this.receivePaused = false;
    this.checkReceiveBudget();
    this.replay = [...this.inFlight.keys()];
    this.replayHead = 0;
    this.flushReplay();
    this.flush();
    this.armResendTimer();
    this.startAckRateSampling();
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
    this.stopAckRateSampling();
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
    this.sendQueue.push({ sequenceNumber, frame, payloadBytes: payload.length, sentAtMs: 0, deadlineMs: 0, transmissions: 0, laterAcks: 0 });
    return sequenceNumber;
  }

  /** End the channel for good. With an error, `data` is destroyed with it; without, its readable side ends. */
  close(error?: BridgeError): void {
    if (this.state === 'closed') return;
    this.detach();
    this.state = 'closed';
    this.clearResendTimer();
    this.stopAckRateSampling();
    this.reorderBuffer.clear();
    this.reorderBytes = 0;
    this.sendQueue.length = 0;
    this.sendQueueHead = 0;
    this.inFlight.clear();
    this.replay = [];
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
   * + the window. Counting only unacked messages let the span grow without bound behind one lost message.
   */
  private flush(): void {
    if (this.state !== 'attached' || this.publicationPaused || this.transportFull) return;
    if (this.sendQueueHead === this.sendQueue.length) {
      this.sendQueue.length = 0;
      this.sendQueueHead = 0;
      return;
    }
    const now = Date.now();
    // Map iteration follows insertion, i.e. sequence order: the first key is the oldest unacknowledged.
    const oldest = this.inFlight.size === 0 ? this.sendQueue[this.sendQueueHead]!.sequenceNumber : (this.inFlight.keys().next().value as number);
    const windowEnd = oldest + this.window;
    let sent = false;
    while (this.sendQueueHead < this.sendQueue.length && !this.transportFull) {
      const msg = this.sendQueue[this.sendQueueHead]!;
      if (msg.sequenceNumber >= windowEnd) break;
      this.sendQueue[this.sendQueueHead] = undefined as unknown as OutboundMessage;
      this.sendQueueHead++;
      this.inFlight.set(msg.sequenceNumber, msg);
      this.counters.messagesSent++;
      this.counters.payloadBytesSent += msg.payloadBytes;
      this.transmit(msg, now);
      sent = true;
    }
    if (this.sendQueueHead === this.sendQueue.length) {
      this.sendQueue.length = 0;
      this.sendQueueHead = 0;
    } else if (this.sendQueueHead > 4096) {
      this.sendQueue.splice(0, this.sendQueueHead);
      this.sendQueueHead = 0;
    }
    if (sent) this.armResendTimer();
  }

  private transmit(msg: OutboundMessage, now: number): void {
    msg.transmissions++;
    msg.sentAtMs = now;
    msg.laterAcks = 0;
    // Each timeout doubles the wait for this message, up to the cap (a stalled peer gets fewer, not more).
    msg.deadlineMs = now + Math.min(this.rtt.rtoMs * 2 ** Math.min(msg.transmissions - 1, 6), 1_000);
    if (!this.transport!.sendBinary(msg.frame)) this.transportFull = true;
  }

  /** After a reconnect: every message unacknowledged at that moment, once, oldest first. */
  private flushReplay(): void {
    const now = Date.now();
    while (this.replayHead < this.replay.length && !this.transportFull && this.state === 'attached' && !this.publicationPaused) {
      const msg = this.inFlight.get(this.replay[this.replayHead++]!);
      if (msg === undefined) continue; // acknowledged meanwhile
      this.counters.resends++;
      this.transmit(msg, now);
    }
    if (this.replayHead >= this.replay.length) {
      this.replay = [];
      this.replayHead = 0;
    }
  }

  private armResendTimer(): void {
    if (this.resendTimer !== undefined || this.state !== 'attached' || this.inFlight.size === 0) return;
    this.resendTimer = setTimeout(this.onResendTick, RESEND_TICK_MS);
    this.resendTimer.unref();
  }

  private clearResendTimer(): void {
    if (this.resendTimer !== undefined) clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
  }

  /**
   * Once per tick: resend the oldest message if it timed out, and any message that evidence says was lost (its
   * resend may have been lost too). Nothing while the transport is full or the service paused us.
   */
  private readonly onResendTick = (): void => {
    this.resendTimer = undefined;
    this.fastResendsThisTick = 0;
    if (this.state !== 'attached') return;
    if (!this.transportFull && !this.publicationPaused) {
      const now = Date.now();
      let first = true;
      for (const msg of this.inFlight.values()) {
        if (this.transportFull) break;
        if (first) {
          first = false;
          if (msg.deadlineMs <= now) {
            this.counters.resends++;
            this.counters.timeoutResends++;
            this.transmit(msg, now);
            continue;
          }
        }
        if (msg.laterAcks >= LOSS_EVIDENCE_ACKS && msg.deadlineMs <= now && !this.fastResend(msg, now)) break;
        // Messages after the first with no evidence are left alone: only acks tell us they are lost.
        if (msg.laterAcks === 0) break;
      }
    }
    this.armResendTimer();
  };

  /** Resend a message evidence says was lost, within the per-tick budget; false once the budget is spent. */
  private fastResend(msg: OutboundMessage, now: number): boolean {
    if (this.fastResendsThisTick >= FAST_RESENDS_PER_TICK || this.transportFull || this.publicationPaused) return false;
    this.fastResendsThisTick++;
    this.counters.resends++;
    this.counters.fastResends++;
    this.transmit(msg, now);
    return true;
  }

  private readonly onTransportDrain = (): void => {
    this.transportFull = false;
    this.flushReplay();
    this.flush();
    this.armResendTimer();
  };

  /** Every quarter second with messages in flight: acks per second, smoothed, sets the window. */
  private startAckRateSampling(): void {
    if (this.sampleTimer !== undefined) return;
    this.acksThisSample = 0;
    this.sampleBusy = this.inFlight.size > 0;
    this.sampleTimer = setInterval(() => {
      if (this.sampleBusy) {
        const rate = (this.acksThisSample * 1000) / ACK_RATE_SAMPLE_MS;
        this.ackRate = this.ackRate === 0 ? rate : 0.6 * this.ackRate + 0.4 * rate;
        this.window = Math.max(this.minInFlight, Math.min(this.maxInFlight, Math.round(this.ackRate * WINDOW_SECONDS)));
      }
      this.acksThisSample = 0;
      this.sampleBusy = this.inFlight.size > 0;
    }, ACK_RATE_SAMPLE_MS);
    this.sampleTimer.unref();
  }

  private stopAckRateSampling(): void {
    if (this.sampleTimer !== undefined) clearInterval(this.sampleTimer);
    this.sampleTimer = undefined;
  }

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
      if (err instanceof ProtocolError && err.field === 'messageType') this.onUnknownType(frame);
      else this.onMalformed(err);
      return;
    }
    try {
      this.onMessage(msg);
    } catch (err) {
      // A payload we cannot handle must not be acknowledged into a stall: the channel ends with the reason.
      const error = err instanceof BridgeError ? err : new BridgeError(ErrorCode.PROTOCOL_ERROR, `could not handle a ${msg.messageType} message: ${(err as Error).message}`, { cause: err });
      this.close(error);
    }
  };

  private onUnknownType(frame: Buffer): void {
    this.counters.unknownTypesReceived++;
    const name = frame.toString('latin1', 4, 36).replace(/[\s\0]+$/, '');
    if (this.unknownTypes.size < 16 && !this.unknownTypes.has(name)) {
      this.unknownTypes.add(name);
      this.emit('unknown-type', name);
    }
  }

  private onMalformed(err: unknown): void {
    if (!(err instanceof ProtocolError)) throw err;
    // Dropped unacknowledged: a corrupted message is resent by its sender. Only a stream of garbage is fatal.
    this.counters.malformedReceived++;
    const now = Date.now();
    if (now - this.malformedWindowStartMs > this.malformedWindowMs) {
      this.malformedWindowStartMs = now;
      this.malformedInWindow = 0;
    }
    this.malformedInWindow++;
    this.emit('malformed', err);
    if (this.malformedInWindow >= this.maxMalformed) {
      const seconds = Math.round(this.malformedWindowMs / 1000);
      this.close(new BridgeError(ErrorCode.PROTOCOL_ERROR, `the peer sent ${this.malformedInWindow} malformed messages within ${seconds} s (last: ${err.message})`, { cause: err }));
    }
  }

  private onMessage(msg: AgentMessage): void {
    switch (msg.messageType) {
      case MessageType.Acknowledge: {
        let ack;
        try {
          ack = decodeAcknowledge(msg.payload);
        } catch (err) {
          this.onMalformed(err);
          return;
        }
        this.onAcknowledge(ack.AcknowledgedMessageSequenceNumber);
        return;
      }
      case this.incomingType:
        this.onStreamMessage(msg);
        return;
      case MessageType.ChannelClosed: {
        let closed: ChannelClosed;
        try {
          closed = decodeChannelClosed(msg.payload);
        } catch (err) {
          this.onMalformed(err);
          return;
        }
        this.emit('channel-closed', closed);
        return;
      }
      case MessageType.PausePublication:
        this.publicationPaused = true;
        this.emit('publication', 'paused');
        return;
      case MessageType.StartPublication:
        this.resumePublication();
        return;
      default:
        // Our own type coming back, e.g. input_stream_data to a client: not for us.
        this.counters.unknownTypesReceived++;
        return;
    }
  }

  /** start_publication, or anything that shows the service is passing our data again (SPEC §5). */
  private resumePublication(): void {
    if (!this.publicationPaused) return;
    this.publicationPaused = false;
    this.emit('publication', 'started');
    this.flushReplay();
    this.flush();
    this.armResendTimer();
  }

  private onAcknowledge(sequenceNumber: number): void {
    this.counters.acksReceived++;
    this.resumePublication();
    const acked = this.inFlight.get(sequenceNumber);
    if (acked === undefined) return; // a repeat ack, or for a message already acknowledged
    this.acksThisSample++;
    this.sampleBusy = true;
    const now = Date.now();
    // Older messages still unacknowledged, sent before this one: one more piece of evidence each that they were lost.
    for (const older of this.inFlight.values()) {
      if (older.sequenceNumber >= sequenceNumber) break;
      if (older.sentAtMs > acked.sentAtMs) continue;
      older.laterAcks++;
      if (older.laterAcks === LOSS_EVIDENCE_ACKS) this.fastResend(older, now);
    }
    this.inFlight.delete(sequenceNumber);
    this.counters.payloadBytesAcknowledged += acked.payloadBytes;
    if (acked.transmissions === 1) this.rtt.observe(now - acked.sentAtMs);
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
    this.resumePublication();
    if (seq > this.highestSequenceSeen) this.highestSequenceSeen = seq;
    if (seq === this.expectedSequence) {
      // Delivered first, then acknowledged: an ack means the bytes are in our custody.
      this.deliver(msg);
      this.sendAck(msg);
      this.expectedSequence++;
      // Drain successors that arrived early (each was acknowledged when buffered).
      let next = this.reorderBuffer.get(this.expectedSequence);
      while (next !== undefined && this.state !== 'closed') {
        this.reorderBuffer.delete(this.expectedSequence);
        this.reorderBytes -= next.payload.length;
        this.deliver(next);
        this.expectedSequence++;
        next = this.reorderBuffer.get(this.expectedSequence);
      }
      this.checkReceiveBudget();
    } else if (seq > this.expectedSequence) {
      if (this.reorderBuffer.has(seq)) {
        this.counters.duplicatesReceived++;
        this.sendAck(msg);
      } else if (this.reorderBuffer.size < this.maxReorder && this.reorderBytes + msg.payload.length <= this.maxReorderBytes) {
        this.counters.outOfOrderReceived++;
        // A copy: the frame's buffer may be a large chunk of the socket's read, which a view would keep alive.
        this.reorderBuffer.set(seq, { ...msg, payload: Buffer.from(msg.payload) });
        this.reorderBytes += msg.payload.length;
        this.sendAck(msg);
      } else {
        // A memory bound, not flow control: the peer resends it (the agent: when it is its oldest).
        this.counters.droppedReorderFull++;
      }
    } else {
      // Already delivered: acknowledge again, or a sender that lost our ack resends forever (SPEC §5).
      this.counters.duplicatesReceived++;
      this.sendAck(msg);
    }
  }

  private deliver(msg: AgentMessage): void {
    this.counters.messagesReceived++;
    if (msg.payloadType === PayloadType.Output) {
      this.counters.payloadBytesReceived += msg.payload.length;
      if (this.data.readableEnded || this.data.destroyed) return;
      this.data.push(msg.payload);
      return;
    }
    this.emit('stream-message', msg);
  }

  /** Stop reading the transport while `data` holds more than the budget for a reader that is behind. */
  private checkReceiveBudget(): void {
    const transport = this.transport;
    if (transport === undefined || this.receivePaused || this.data.readableLength <= this.receiveBudgetBytes) return;
    this.receivePaused = true;
    this.counters.receivePauses++;
    transport.pause();
  }

  /** The reader wants more: `data` is below its high-water mark (Node calls read() only then), so read again. */
  private onDataRead(): void {
    if (!this.receivePaused) return;
    this.receivePaused = false;
    this.transport?.resume();
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

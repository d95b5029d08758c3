import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { BridgeError, ErrorCode, ProtocolError } from '../errors.js';
import { encodeFrameHeader, FrameParser, MAX_FRAME_DATA_BYTES, MAX_FRAME_LENGTH, SmuxCommand, type SmuxFrame } from './frame.js';
import { SmuxStream, type SmuxStreamHost } from './stream.js';

/** smux keep-alive timing (SPEC §7: the agent's is 10 s / 30 s when on). */
export interface SmuxKeepAlive {
  /** Send a NOP this often. */
  intervalMs: number;
  /** The session dies when nothing at all arrived for this long. At least `intervalMs`. */
  timeoutMs: number;
}

export interface SmuxSessionOptions {
  /** `client` opens odd stream ids from 3, `server` even ids from 2 (SPEC §7). */
  role: 'client' | 'server';
  /** Whether the peer may open streams (default true). False: a SYN from the peer is a protocol error. */
  allowPeerStreams?: boolean;
  /**
   * Keep-alive; defaults to `{ intervalMs: 10_000, timeoutMs: 30_000 }` (xtaci/smux). Pass `false` when the
   * peer runs without it: agents ≥ 3.1.1511.0 turn it off for current clients, and both ends must agree (SPEC §7).
   */
  keepAlive?: false | SmuxKeepAlive;
  /**
   * Peer data held for streams whose readers have not taken it, summed over the session. Above this the session
   * pauses the carrier, and resumes it once readers catch up: the only backpressure smux v1 has (the token
   * bucket in xtaci/smux session.go). Default 4 MiB.
   */
  maxReceiveBufferBytes?: number;
  /** Data bytes per PSH frame we send; default 32768 (xtaci/smux MaxFrameSize), at most 65535. */
  maxFrameDataBytes?: number;
}

/** Counters since the session started. */
export interface SmuxSessionStats {
  streamsOpened: number;
  streamsAccepted: number;
  framesIn: number;
  framesOut: number;
  /** PSH data bytes received / sent. */
  bytesIn: number;
  bytesOut: number;
  /** PSH frames (and their bytes) for unknown or closed streams, dropped as xtaci/smux does. */
  framesDropped: number;
  bytesDropped: number;
  nopsSent: number;
  /** Times the receive budget ran out and the carrier was paused. */
  carrierPauses: number;
  /** Times carrier.write() returned false and the writer waited for 'drain'. */
  carrierDrainWaits: number;
  /** The most peer data ever held in stream queues at once (see `maxReceiveBufferBytes`). */
  peakReceiveBufferedBytes: number;
}

/** Default keep-alive (xtaci/smux DefaultConfig). */
export const DEFAULT_SMUX_KEEPALIVE: Readonly<SmuxKeepAlive> = Object.freeze({ intervalMs: 10_000, timeoutMs: 30_000 });
/** Default receive budget (xtaci/smux MaxReceiveBuffer). */
export const DEFAULT_MAX_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/*
 * Session state (one field; every transition goes through #transition):
 *
 *   open ──close()──────────────────────────────> closing ──(FINs queued and flushed)──> closed
 *     │                                                                                   ^
 *     └──protocol error / keep-alive timeout / carrier end, close or error────────────────┘
 *
 * `closing` only lasts inside close(): streams are destroyed and may still queue their FIN, but no new
 * stream can be opened. The session never ends or destroys the carrier: it belongs to the caller (the data
 * channel), and the session only detaches from it.
 */
export type SmuxSessionState = 'open' | 'closing' | 'closed';

/** A frame waiting for the carrier. `callback` is a stream's held `_write` callback. */
interface OutboundFrame {
  header: Buffer;
  data: Buffer | undefined;
  callback: ((err?: Error | null) => void) | undefined;
}

/**
 * A smux version 1 session (SPEC §7) over a byte carrier Duplex: the data channel's byte stream, or a socket.
 *
 * Events:
 * - `stream` (SmuxStream): the peer opened a stream. Without a listener, such streams are refused with a FIN.
 * - `error` (ProtocolError | BridgeError TIMEOUT): the peer sent a malformed frame, or keep-alive timed out.
 *   `close` follows. As with any EventEmitter, an `error` without a listener throws.
 * - `close` (err?: Error): the session is over; `err` says why (undefined after `close()`).
 *
 * Frames from every stream go through one ordered writer, so frames never interleave on the carrier.
 */
export class SmuxSession extends EventEmitter {
  #state: SmuxSessionState = 'open';
  readonly #carrier: Duplex;
  readonly #role: 'client' | 'server';
  readonly #allowPeerStreams: boolean;
  readonly #parser: FrameParser;
  readonly #streams = new Map<number, SmuxStream>();
  #lastStreamId: number;
  readonly #maxReceiveBufferBytes: number;
  readonly #maxFrameDataBytes: number;
  readonly #keepAlive: SmuxKeepAlive | undefined;
  readonly #stats: SmuxSessionStats = {
    streamsOpened: 0,
    streamsAccepted: 0,
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesDropped: 0,
    bytesDropped: 0,
    nopsSent: 0,
    carrierPauses: 0,
    carrierDrainWaits: 0,
    peakReceiveBufferedBytes: 0,
  };

  // Receive budget.
  #receiveBufferedBytes = 0;
  #carrierPaused = false;

  // Ordered writer: frames wait here only while the carrier is full.
  #outbound: (OutboundFrame | undefined)[] = [];
  #outboundHead = 0;
  #waitingForDrain = false;
  /** Callbacks of frames written into a full carrier: called on its next 'drain'. */
  #drainCallbacks: ((err?: Error | null) => void)[] = [];

  // Keep-alive.
  #nopTimer: NodeJS.Timeout | undefined;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #lastReceiveMs = performance.now();

  readonly #host: SmuxStreamHost = {
    canSend: () => this.#state !== 'closed',
    sendData: (streamId, data, callback) => this.#sendData(streamId, data, callback),
    sendFin: (streamId) => this.#sendFrame(SmuxCommand.Fin, streamId, undefined, undefined),
    releaseReceiveBytes: (bytes) => this.#releaseReceiveBytes(bytes),
    streamDestroyed: (stream) => {
      if (this.#streams.get(stream.streamId) === stream) this.#streams.delete(stream.streamId);
    },
  };

  constructor(carrier: Duplex, options: SmuxSessionOptions) {
    super();
    this.#carrier = carrier;
    this.#role = options.role;
    this.#allowPeerStreams = options.allowPeerStreams ?? true;
    // openStream() adds 2 first, so the client's first id is 3 and the server's 2 (xtaci/smux session.go).
    this.#lastStreamId = options.role === 'client' ? 1 : 0;
    this.#maxReceiveBufferBytes = options.maxReceiveBufferBytes ?? DEFAULT_MAX_RECEIVE_BUFFER_BYTES;
    this.#maxFrameDataBytes = options.maxFrameDataBytes ?? MAX_FRAME_DATA_BYTES;
    if (!(this.#maxReceiveBufferBytes > 0)) {
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `maxReceiveBufferBytes must be positive, got ${this.#maxReceiveBufferBytes}`);
    }
    if (!Number.isInteger(this.#maxFrameDataBytes) || this.#maxFrameDataBytes < 1 || this.#maxFrameDataBytes > MAX_FRAME_LENGTH) {
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `maxFrameDataBytes must be an integer from 1 to ${MAX_FRAME_LENGTH}, got ${this.#maxFrameDataBytes}`);
    }
    const keepAlive = options.keepAlive === undefined ? DEFAULT_SMUX_KEEPALIVE : options.keepAlive;
    if (keepAlive !== false && !(keepAlive.intervalMs > 0 && keepAlive.timeoutMs >= keepAlive.intervalMs)) {
      throw new BridgeError(
        ErrorCode.INVALID_ARGUMENT,
        `smux keep-alive needs intervalMs > 0 and timeoutMs >= intervalMs, got ${keepAlive.intervalMs} / ${keepAlive.timeoutMs}`,
      );
    }
    this.#keepAlive = keepAlive === false ? undefined : { ...keepAlive };
    this.#parser = new FrameParser(this.#onFrame);

    carrier.on('data', this.#onCarrierData);
    carrier.on('end', this.#onCarrierEnd);
    carrier.on('close', this.#onCarrierClose);
    carrier.on('error', this.#onCarrierError);
    if (this.#keepAlive) this.#startKeepAlive(this.#keepAlive);
    // The owner may have paused the carrier until the session took over.
    carrier.resume();
  }

  /** `open`, `closing` (inside close() only) or `closed`. */
  get state(): SmuxSessionState {
    return this.#state;
  }

  /** Which end of the session this is (decides stream id parity). */
  get role(): 'client' | 'server' {
    return this.#role;
  }

  /** True once the session is closed; streams can no longer be opened. */
  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** Streams currently known to the session. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Peer data currently held in stream queues, counted against `maxReceiveBufferBytes`. */
  get receiveBufferedBytes(): number {
    return this.#receiveBufferedBytes;
  }

  /** A snapshot of the counters. */
  get stats(): SmuxSessionStats {
    return { ...this.#stats };
  }

  /**
   * Open a stream: its SYN goes out at once, and data may follow right away (v1 has no SYN-ACK).
   * Throws BridgeError CHANNEL_CLOSED when the session is closed.
   */
  openStream(): SmuxStream {
    if (this.#state !== 'open') {
      throw new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the smux session is closed; start a new session to open streams');
    }
    const streamId = this.#lastStreamId + 2;
    if (streamId > 0xffff_ffff) {
      throw new BridgeError(ErrorCode.CHANNEL_CLOSED, 'smux stream ids are used up on this session; start a new session');
    }
    this.#lastStreamId = streamId;
    const stream = new SmuxStream(this.#host, streamId);
    this.#streams.set(streamId, stream);
    this.#stats.streamsOpened++;
    this.#sendFrame(SmuxCommand.Syn, streamId, undefined, undefined);
    return stream;
  }

  /**
   * Close the session: every open stream is destroyed (and sends its FIN), queued frames are written to the
   * carrier, timers stop, and the session detaches from the carrier, which stays open for its owner.
   */
  close(): void {
    this.#transition('closing');
  }

  /**
   * `carrierEnded`: the carrier ended cleanly (every byte of it was parsed), as when the service ends the
   * session: streams then end like a peer's FIN, so their readers get what was received, instead of being
   * destroyed with it.
   */
  #transition(to: SmuxSessionState, reason?: Error, emitError = false, carrierEnded = false): void {
    const from = this.#state;
    if (from === 'closed' || from === to) return;
    switch (to) {
      case 'open':
        throw new Error(`smux session: no transition from ${from} to open`);
      case 'closing':
        this.#state = 'closing';
        this.#stopKeepAlive();
        // Streams queue their FIN while still in `closing`; then everything goes out in order.
        for (const stream of [...this.#streams.values()]) stream.destroy();
        this.#flushAll();
        this.#transition('closed');
        return;
      case 'closed': {
        this.#state = 'closed';
        this.#stopKeepAlive();
        this.#detachCarrier();
        const streams = [...this.#streams.values()];
        this.#streams.clear();
        for (const stream of streams) {
          // A stream that already has the peer's FIN holds all of its data: let its reader finish it.
          if (stream.remoteEnded && reason !== undefined) continue;
          if (carrierEnded) stream.carrierEnded();
          else stream.abandon(reason);
        }
        // Writers still waiting on the carrier: after close() their frames are in it (success); after a
        // failure they will never be delivered.
        const callbacks = this.#drainCallbacks;
        this.#drainCallbacks = [];
        for (let i = this.#outboundHead; i < this.#outbound.length; i++) {
          const callback = this.#outbound[i]?.callback;
          if (callback) callbacks.push(callback);
        }
        this.#outbound = [];
        this.#outboundHead = 0;
        this.#receiveBufferedBytes = 0;
        for (const callback of callbacks) callback(reason);
        process.nextTick(() => {
          if (emitError && reason !== undefined) this.emit('error', reason);
          this.emit('close', reason);
        });
        return;
      }
    }
  }

  // ---- receiving ----

  readonly #onCarrierData = (chunk: Buffer): void => {
    if (this.#state === 'closed') return;
    this.#lastReceiveMs = performance.now();
    try {
      this.#parser.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#transition('closed', err, true);
      return;
    }
    if (this.#receiveBufferedBytes > this.#maxReceiveBufferBytes && !this.#carrierPaused && !this.isClosed) {
      // The whole chunk was parsed (bytes cannot be unread), so the budget is overshot by at most one chunk.
      this.#carrierPaused = true;
      this.#stats.carrierPauses++;
      this.#carrier.pause();
    }
  };

  readonly #onFrame = (frame: SmuxFrame): void => {
    if (this.#state === 'closed') return;
    this.#stats.framesIn++;
    switch (frame.cmd) {
      case SmuxCommand.Syn:
        this.#acceptStream(frame.streamId);
        return;
      case SmuxCommand.Psh: {
        const stream = this.#streams.get(frame.streamId);
        if (stream === undefined || stream.remoteEnded) {
          // Unknown or closed stream: dropped, as xtaci/smux does (a FIN may be in flight the other way).
          this.#stats.framesDropped++;
          this.#stats.bytesDropped += frame.data.length;
          return;
        }
        this.#stats.bytesIn += frame.data.length;
        const charged = stream.receiveData(frame.data);
        if (charged > 0) {
          this.#receiveBufferedBytes += charged;
          if (this.#receiveBufferedBytes > this.#stats.peakReceiveBufferedBytes) {
            this.#stats.peakReceiveBufferedBytes = this.#receiveBufferedBytes;
          }
        }
        return;
      }
      case SmuxCommand.Fin:
        this.#streams.get(frame.streamId)?.receiveFin();
        return;
      case SmuxCommand.Nop:
        return;
    }
  };

  #acceptStream(streamId: number): void {
    // The agent never opens streams towards a port-forwarding client: refusing each one with a FIN would queue
    // a frame per SYN for a peer that need not read them (memory it controls), so there it is a protocol error.
    if (!this.#allowPeerStreams) {
      this.#transition('closed', new ProtocolError('cmd', `the server opened stream ${streamId}; an SSM agent never opens streams towards the client`), true);
      return;
    }
    // A SYN for an id in use is ignored, as in xtaci/smux.
    if (this.#streams.has(streamId) || this.#state !== 'open') return;
    const stream = new SmuxStream(this.#host, streamId);
    this.#streams.set(streamId, stream);
    this.#stats.streamsAccepted++;
    if (this.listenerCount('stream') === 0) {
      stream.destroy(); // nobody to serve it: refuse with a FIN
      return;
    }
    this.emit('stream', stream);
  }

  #releaseReceiveBytes(bytes: number): void {
    if (this.#state === 'closed') return;
    this.#receiveBufferedBytes -= bytes;
    if (this.#carrierPaused && this.#receiveBufferedBytes <= this.#maxReceiveBufferBytes) {
      this.#carrierPaused = false;
      // The peer's NOPs waited in the paused carrier: silence while paused is not the peer's fault.
      this.#lastReceiveMs = performance.now();
      this.#carrier.resume();
    }
  }

  readonly #onCarrierEnd = (): void => {
    this.#transition('closed', new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the carrier under the smux session ended'), false, true);
  };

  /** A close without an end: the carrier was destroyed, and whatever it still held is gone. */
  readonly #onCarrierClose = (): void => {
    this.#transition('closed', new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the carrier under the smux session closed'));
  };

  readonly #onCarrierError = (err: Error): void => {
    this.#transition('closed', new BridgeError(ErrorCode.CHANNEL_CLOSED, `the carrier under the smux session failed: ${err.message}`, { cause: err }));
  };

  #detachCarrier(): void {
    const carrier = this.#carrier;
    carrier.off('data', this.#onCarrierData);
    carrier.off('end', this.#onCarrierEnd);
    carrier.off('close', this.#onCarrierClose);
    carrier.off('error', this.#onCarrierError);
    carrier.off('drain', this.#onCarrierDrain);
    if (this.#carrierPaused) {
      this.#carrierPaused = false;
      carrier.resume();
    }
  }

  // ---- sending ----

  #sendData(streamId: number, data: Buffer, callback: (err?: Error | null) => void): void {
    const max = this.#maxFrameDataBytes;
    if (data.length <= max) {
      this.#sendFrame(SmuxCommand.Psh, streamId, data, callback);
      return;
    }
    for (let offset = 0; offset < data.length; offset += max) {
      const end = Math.min(offset + max, data.length);
      // The callback rides on the last frame: the stream's next write waits for all of them.
      this.#sendFrame(SmuxCommand.Psh, streamId, data.subarray(offset, end), end === data.length ? callback : undefined);
    }
  }

  #sendFrame(cmd: SmuxCommand, streamId: number, data: Buffer | undefined, callback: ((err?: Error | null) => void) | undefined): void {
    if (this.#state === 'closed') {
      callback?.(new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the smux session is closed'));
      return;
    }
    const frame: OutboundFrame = { header: encodeFrameHeader(cmd, streamId, data?.length ?? 0), data, callback };
    if (this.#waitingForDrain) {
      // Bounded: each stream has at most one write in flight (its callback is held), plus FINs and one NOP.
      this.#outbound.push(frame);
      return;
    }
    this.#carrier.cork();
    this.#writeFrame(frame);
    this.#carrier.uncork();
  }

  /** Write one frame; returns false when the carrier is full (the frame went in, the writer must wait). */
  #writeFrame(frame: OutboundFrame): boolean {
    const carrier = this.#carrier;
    let ok = carrier.write(frame.header);
    if (frame.data !== undefined) {
      ok = carrier.write(frame.data);
      this.#stats.bytesOut += frame.data.length;
    }
    this.#stats.framesOut++;
    if (ok) {
      frame.callback?.();
      return true;
    }
    if (frame.callback) this.#drainCallbacks.push(frame.callback);
    if (!this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.#stats.carrierDrainWaits++;
      carrier.once('drain', this.#onCarrierDrain);
    }
    return false;
  }

  readonly #onCarrierDrain = (): void => {
    if (this.#state === 'closed') return;
    this.#waitingForDrain = false;
    const callbacks = this.#drainCallbacks;
    this.#drainCallbacks = [];
    this.#carrier.cork();
    while (this.#outboundHead < this.#outbound.length) {
      const frame = this.#outbound[this.#outboundHead]!;
      this.#outbound[this.#outboundHead++] = undefined;
      if (!this.#writeFrame(frame)) break;
    }
    if (this.#outboundHead === this.#outbound.length) {
      this.#outbound = [];
      this.#outboundHead = 0;
    }
    this.#carrier.uncork();
    for (const callback of callbacks) callback();
  };

  /** close(): hand every queued frame to the carrier regardless of backpressure (the queue is bounded). */
  #flushAll(): void {
    if (this.#outboundHead === this.#outbound.length) return;
    const carrier = this.#carrier;
    carrier.cork();
    for (let i = this.#outboundHead; i < this.#outbound.length; i++) {
      const frame = this.#outbound[i]!;
      carrier.write(frame.header);
      if (frame.data !== undefined) {
        carrier.write(frame.data);
        this.#stats.bytesOut += frame.data.length;
      }
      this.#stats.framesOut++;
      if (frame.callback) this.#drainCallbacks.push(frame.callback);
    }
    carrier.uncork();
    this.#outbound = [];
    this.#outboundHead = 0;
  }

  // ---- keep-alive ----

  #startKeepAlive(keepAlive: SmuxKeepAlive): void {
    // Timers are unref'd: keep-alive alone should not keep a process running.
    this.#nopTimer = setInterval(() => {
      // While the carrier is full a NOP would only queue behind data; the peer is not reading anyway.
      if (this.#state === 'open' && !this.#waitingForDrain) {
        this.#stats.nopsSent++;
        this.#sendFrame(SmuxCommand.Nop, 0, undefined, undefined);
      }
    }, keepAlive.intervalMs).unref();
    this.#lastReceiveMs = performance.now();
    this.#scheduleTimeoutCheck(keepAlive.timeoutMs);
  }

  #scheduleTimeoutCheck(delayMs: number): void {
    this.#timeoutTimer = setTimeout(() => this.#checkTimeout(), Math.max(1, Math.ceil(delayMs))).unref();
  }

  #checkTimeout(): void {
    const keepAlive = this.#keepAlive;
    if (keepAlive === undefined || this.#state !== 'open') return;
    const now = performance.now();
    // While we paused the carrier ourselves, the peer's NOPs wait unread: that is not silence (xtaci/smux too).
    if (this.#carrierPaused) this.#lastReceiveMs = now;
    const silentMs = now - this.#lastReceiveMs;
    if (silentMs >= keepAlive.timeoutMs) {
      this.#transition(
        'closed',
        new BridgeError(
          ErrorCode.TIMEOUT,
          `smux keep-alive: nothing received for ${Math.round(silentMs)} ms (timeout ${keepAlive.timeoutMs} ms); the peer is gone or does not run keep-alive, so pass keepAlive: false`,
        ),
        true,
      );
      return;
    }
    this.#scheduleTimeoutCheck(keepAlive.timeoutMs - silentMs);
  }

  #stopKeepAlive(): void {
    clearInterval(this.#nopTimer);
    clearTimeout(this.#timeoutTimer);
    this.#nopTimer = undefined;
    this.#timeoutTimer = undefined;
  }
}

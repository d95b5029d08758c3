import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { BridgeError, ErrorCode, ProtocolError } from '../errors.js';
import { encodeFrame, FrameParser, SMUX_MAX_FRAME_DATA, SmuxCommand, type SmuxFrame } from './frame.js';
import { SmuxStream, type SmuxStreamOwner } from './stream.js';

export interface SmuxKeepAlive {
  /** Send a NOP this often. */
  intervalMs: number;
  /** Close the session when nothing arrived for this long; Infinity sends NOPs without ever timing out. */
  timeoutMs: number;
}

export interface SmuxSessionOptions {
  role: 'client' | 'server';
  /** Off, as the agent runs it for current clients (SPEC §7), unless given. */
  keepAlive?: false | SmuxKeepAlive;
  /** Bytes buffered in stream readables before the session stops reading the carrier (smux's token bucket). */
  maxReceiveBufferBytes?: number;
}

type SmuxState = 'open' | 'closed';

/**
 * A smux v1 session over a byte carrier (the data channel's Duplex). Client streams have odd ids from 3,
 * server streams even ids from 2. Events: `stream` (SmuxStream opened by the peer), `error`, `close`.
 */
export class SmuxSession extends EventEmitter implements SmuxStreamOwner {
  private state: SmuxState = 'open';
  private readonly carrier: Duplex;
  private readonly parser = new FrameParser();
  private readonly streams = new Map<number, SmuxStream>();
  private nextStreamId: number;
  private readonly maxReceiveBufferBytes: number;
  private carrierPaused = false;
  private carrierFull = false;
  private writeWaiters: Array<(err?: Error | null) => void> = [];
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private lastReceiveMs = Date.now();
  readonly counters = { streamsOpened: 0, streamsAccepted: 0, bytesIn: 0, bytesOut: 0 };

  constructor(carrier: Duplex, options: SmuxSessionOptions) {
    super();
    this.carrier = carrier;
    this.nextStreamId = options.role === 'client' ? 1 : 0;
    this.maxReceiveBufferBytes = options.maxReceiveBufferBytes ?? 4 * 1024 * 1024;
    carrier.on('data', this.onCarrierData);
    carrier.on('drain', this.onCarrierDrain);
    carrier.on('end', this.onCarrierEnd);
    carrier.on('close', this.onCarrierEnd);
    carrier.on('error', this.onCarrierError);
    if (options.keepAlive) this.startKeepAlive(options.keepAlive);
    carrier.resume();
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Open a stream: SYN goes out at once; data written before the peer accepts is fine (no handshake in v1). */
  openStream(): SmuxStream {
    if (this.state === 'closed') throw new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the smux session is closed');
    this.nextStreamId += 2;
    const stream = new SmuxStream(this, this.nextStreamId);
    this.streams.set(stream.streamId, stream);
    this.counters.streamsOpened++;
    this.writeFrame(encodeFrame({ cmd: SmuxCommand.Syn, streamId: stream.streamId }));
    return stream;
  }

  /** Close every stream (FIN each) and stop; the carrier itself is left to its owner. */
  close(error?: Error): void {
    if (this.state === 'closed') return;
    for (const stream of [...this.streams.values()]) {
      if (error) stream.abandon(error);
      else stream.destroy();
    }
    this.state = 'closed';
    this.streams.clear();
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.carrier.off('data', this.onCarrierData);
    this.carrier.off('drain', this.onCarrierDrain);
    this.carrier.off('end', this.onCarrierEnd);
    this.carrier.off('close', this.onCarrierEnd);
    this.carrier.off('error', this.onCarrierError);
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of waiters) w(error ?? new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the smux session is closed'));
    this.emit('close', error);
  }

  // ---- SmuxStreamOwner ----

  writeData(streamId: number, data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.state === 'closed') {
      cb(new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the smux session is closed'));
      return;
    }
    for (let offset = 0; offset < data.length; offset += SMUX_MAX_FRAME_DATA) {
      this.writeFrame(encodeFrame({ cmd: SmuxCommand.Psh, streamId, data: data.subarray(offset, offset + SMUX_MAX_FRAME_DATA) }));
    }
    this.counters.bytesOut += data.length;
    // Hold the stream's callback while the carrier is full: the stream then buffers, and its writer waits.
    if (this.carrierFull) this.writeWaiters.push(cb);
    else cb();
  }

  sendFin(streamId: number): void {
    if (this.state === 'open') this.writeFrame(encodeFrame({ cmd: SmuxCommand.Fin, streamId }));
  }

  streamReadRequested(): void {
    this.updateReceiveBudget();
  }

  streamClosed(streamId: number): void {
    this.streams.delete(streamId);
    this.updateReceiveBudget();
  }

  // ---- internals ----

  private writeFrame(frame: Buffer): void {
    if (!this.carrier.write(frame)) this.carrierFull = true;
  }

  private readonly onCarrierDrain = (): void => {
    this.carrierFull = false;
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of waiters) w();
  };

  private readonly onCarrierData = (chunk: Buffer): void => {
    this.lastReceiveMs = Date.now();
    let frames: SmuxFrame[];
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.close(err);
      return;
    }
    for (const frame of frames) {
      if (this.state === 'closed') return;
      this.onFrame(frame);
    }
    this.updateReceiveBudget();
  };

  private onFrame(frame: SmuxFrame): void {
    switch (frame.cmd) {
      case SmuxCommand.Syn: {
        if (this.streams.has(frame.streamId)) return;
        const stream = new SmuxStream(this, frame.streamId);
        this.streams.set(frame.streamId, stream);
        this.counters.streamsAccepted++;
        this.emit('stream', stream);
        return;
      }
      case SmuxCommand.Psh: {
        const stream = this.streams.get(frame.streamId);
        // Data for a stream we do not know (already closed here) is dropped, as xtaci/smux does.
        if (stream === undefined) return;
        this.counters.bytesIn += frame.data.length;
        stream.receive(frame.data);
        return;
      }
      case SmuxCommand.Fin:
        this.streams.get(frame.streamId)?.receiveFin();
        return;
      case SmuxCommand.Nop:
        return;
    }
  }

  /** Pause the carrier while stream readables hold more than the budget; resume when readers catch up. */
  private updateReceiveBudget(): void {
    if (this.state === 'closed') return;
    let buffered = 0;
    for (const stream of this.streams.values()) buffered += stream.readableLength;
    if (!this.carrierPaused && buffered > this.maxReceiveBufferBytes) {
      this.carrierPaused = true;
      this.carrier.pause();
    } else if (this.carrierPaused && buffered <= this.maxReceiveBufferBytes / 2) {
      this.carrierPaused = false;
      this.carrier.resume();
    }
  }

  private startKeepAlive(keepAlive: SmuxKeepAlive): void {
    this.keepAliveTimer = setInterval(() => {
      if (this.state === 'closed') return;
      // A carrier we paused ourselves may hold the peer's NOPs unread: that is not the peer's silence.
      if (!this.carrierPaused && Date.now() - this.lastReceiveMs > keepAlive.timeoutMs) {
        this.close(new BridgeError(ErrorCode.TIMEOUT, `smux keep-alive: nothing received for ${keepAlive.timeoutMs} ms`));
        return;
      }
      this.writeFrame(encodeFrame({ cmd: SmuxCommand.Nop, streamId: 0 }));
    }, keepAlive.intervalMs);
    this.keepAliveTimer.unref();
  }

  private readonly onCarrierEnd = (): void => {
    this.close(new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the data channel closed under the smux session'));
  };

  private readonly onCarrierError = (err: Error): void => {
    this.close(err);
  };
}

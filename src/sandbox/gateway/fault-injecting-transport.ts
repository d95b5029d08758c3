import { EventEmitter } from 'node:events';
import type { Transport } from '../../channel/index.js';

/** The per-connection faults the gateway applies; read on every frame so they can change mid-session. */
export interface ConnectionFaults {
  /** Terminate the WebSocket after this many binary frames (both ways) on one connection. */
  closeAfterMessages?: number | undefined;
  /** Terminate the WebSocket after this many bytes of binary frames (both ways) on one connection. */
  closeAfterBytes?: number | undefined;
  /** Terminate every connection this many ms after it opens. */
  closeEveryMs?: number | undefined;
  /** Fractions in [0, 1] of binary frames to drop, duplicate, hold back behind the next one, or delay. */
  dropRate: number;
  duplicateRate: number;
  reorderRate: number;
  delayRate: number;
  delayMs: number;
  /** Swallow every binary frame both ways without closing (the gateway also stops answering pings). */
  blackhole?: boolean | undefined;
}

export interface FaultCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  delayed: number;
  corrupted: number;
}

export interface FaultInjectingTransportOptions {
  faults: () => ConnectionFaults;
  /** Uniform [0, 1) source, seeded by the sandbox for reproducible runs. */
  random: () => number;
  /** Consumes one "corrupt the next digest" credit; true when this outbound frame must be corrupted. */
  takeCorruption?: () => boolean;
  counters?: FaultCounters;
}

export function newFaultCounters(): FaultCounters {
  return { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0, duplicated: 0, reordered: 0, delayed: 0, corrupted: 0 };
}

/** Offset of the payload digest in an agent message (SPEC §3). */
const DIGEST_OFFSET = 80;

/**
 * A Transport decorator that misbehaves on purpose: it drops, duplicates, reorders, delays and corrupts
 * binary frames in both directions, and cuts the connection after a count, a size or a time.
 */
export class FaultInjectingTransport extends EventEmitter implements Transport {
  readonly counters: FaultCounters;
  private readonly inner: Transport;
  private readonly options: FaultInjectingTransportOptions;
  private heldOut: Buffer | undefined;
  private heldIn: Buffer | undefined;
  private framesThisConnection = 0;
  private bytesThisConnection = 0;
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly openedAtMs = Date.now();
  private cut = false;

  constructor(inner: Transport, options: FaultInjectingTransportOptions) {
    super();
    this.inner = inner;
    this.options = options;
    this.counters = options.counters ?? newFaultCounters();
    inner.on('message', (frame: Buffer, isBinary: boolean) => this.onInbound(frame, isBinary));
    inner.on('drain', () => this.emit('drain'));
    inner.on('close', (code: number, reason: string) => {
      if (this.closeTimer) clearTimeout(this.closeTimer);
      this.emit('close', code, reason);
    });
    inner.on('error', (err: Error) => this.emit('error', err));
    inner.on('silence', (ms: number) => this.emit('silence', ms));
    const every = options.faults().closeEveryMs;
    if (every !== undefined && every > 0) {
      this.closeTimer = setTimeout(() => this.cutConnection(), every);
      this.closeTimer.unref();
    }
  }

  get isOpen(): boolean {
    return this.inner.isOpen && !this.cut;
  }

  sendBinary(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    if (this.swallow()) return true;
    if (this.countAndMaybeCut(frame.length)) return false;
    let out = frame;
    if (this.options.takeCorruption?.() && frame.length > DIGEST_OFFSET) {
      // Copy: the channel keeps the original for its resend.
      out = Buffer.from(frame);
      out[DIGEST_OFFSET] = out[DIGEST_OFFSET]! ^ 0xff;
      this.counters.corrupted++;
    }
    return this.applyFaults(out, (f) => this.inner.sendBinary(f), 'out');
  }

  sendText(text: string): void {
    this.inner.sendText(text);
  }

  pause(): void {
    this.inner.pause();
  }

  resume(): void {
    this.inner.resume();
  }

  close(code?: number, reason?: string): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.inner.close(code, reason);
  }

  terminate(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.inner.terminate();
  }

  private onInbound(frame: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.emit('message', frame, false);
      return;
    }
    if (this.cut) return;
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
    if (this.swallow()) return;
    if (this.countAndMaybeCut(frame.length)) return;
    this.applyFaults(frame, (f) => {
      this.emit('message', f, true);
      return true;
    }, 'in');
  }

  private applyFaults(frame: Buffer, deliver: (f: Buffer) => boolean, direction: 'in' | 'out'): boolean {
    const faults = this.options.faults();
    const random = this.options.random;
    if (faults.dropRate > 0 && random() < faults.dropRate) {
      this.counters.dropped++;
      return true;
    }
    if (faults.delayRate > 0 && faults.delayMs > 0 && random() < faults.delayRate) {
      this.counters.delayed++;
      setTimeout(() => {
        if (this.isOpen) deliver(frame);
      }, faults.delayMs).unref();
      return true;
    }
    const held = direction === 'out' ? this.heldOut : this.heldIn;
    if (held === undefined && faults.reorderRate > 0 && random() < faults.reorderRate) {
      // Hold this frame back; it goes out right after the next one.
      this.counters.reordered++;
      if (direction === 'out') this.heldOut = frame;
      else this.heldIn = frame;
      return true;
    }
    let ok = deliver(frame);
    if (faults.duplicateRate > 0 && random() < faults.duplicateRate) {
      this.counters.duplicated++;
      ok = deliver(frame) && ok;
    }
    if (held !== undefined) {
      if (direction === 'out') this.heldOut = undefined;
      else this.heldIn = undefined;
      ok = deliver(held) && ok;
    }
    return ok;
  }

  /** Blackhole: the frame vanishes (counted as dropped) and, unlike a cut, nothing closes. */
  private swallow(): boolean {
    if (!this.options.faults().blackhole) return false;
    this.counters.dropped++;
    return true;
  }

  private countAndMaybeCut(bytes: number): boolean {
    this.framesThisConnection++;
    this.bytesThisConnection += bytes;
    const faults = this.options.faults();
    const overMessages = faults.closeAfterMessages !== undefined && faults.closeAfterMessages > 0 && this.framesThisConnection > faults.closeAfterMessages;
    const overBytes = faults.closeAfterBytes !== undefined && faults.closeAfterBytes > 0 && this.bytesThisConnection > faults.closeAfterBytes;
    // closeEveryMs set after this connection opened still applies, at its next frame.
    const overTime = faults.closeEveryMs !== undefined && faults.closeEveryMs > 0 && Date.now() - this.openedAtMs > faults.closeEveryMs;
    if (overMessages || overBytes || overTime) {
      this.cutConnection();
      return true;
    }
    return false;
  }

  private cutConnection(): void {
    if (this.cut) return;
    this.cut = true;
    this.inner.terminate();
  }
}

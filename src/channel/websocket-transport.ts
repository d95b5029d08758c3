import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { Transport } from './transport.js';

export interface WebSocketTransportOptions {
  /** `sendBinary` returns false once this many bytes wait in the socket. */
  highWaterBytes?: number;
  /**
   * Silence detection: send a ping every `pingIntervalMs`; if nothing at all arrives for `silenceTimeoutMs`,
   * terminate the socket so the owner can resume. 0 disables. The official client pings every 5 minutes.
   */
  pingIntervalMs?: number;
  silenceTimeoutMs?: number;
}

const DEFAULT_HIGH_WATER_BYTES = 256 * 1024;

/** A `ws` WebSocket (client or server side) as a Transport. */
export class WebSocketTransport extends EventEmitter implements Transport {
  readonly ws: WebSocket;
  private readonly highWaterBytes: number;
  private waitingForDrain = false;
  private lastReceiveMs = Date.now();
  private pingTimer: NodeJS.Timeout | undefined;
  private corkedSocket: Duplex | undefined;
  private paused = false;
  private alive = false;

  constructor(ws: WebSocket, options: WebSocketTransportOptions = {}) {
    super();
    this.ws = ws;
    this.highWaterBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastReceiveMs = Date.now();
      this.markAlive();
      this.emit('message', data, isBinary);
    });
    ws.on('pong', () => {
      this.lastReceiveMs = Date.now();
      this.markAlive();
    });
    ws.on('ping', () => {
      this.lastReceiveMs = Date.now();
      this.markAlive();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.stopPing();
      this.emit('close', code, reason.toString('utf8'));
    });
    ws.on('error', (err: Error) => this.emit('error', err));
    // An 'error' with no listener throws: a transport the channel has let go of (a failed start, a resume that
    // replaced it) can still see a malformed frame during its close. Its failures are reported through 'close'.
    this.on('error', () => {});
    const interval = options.pingIntervalMs ?? 0;
    const silence = options.silenceTimeoutMs ?? 0;
    if (interval > 0 && silence > 0) this.startPing(interval, silence);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  sendBinary(frame: Buffer): boolean {
    // A frame sent on a closed socket is simply not sent: the channel keeps it until acknowledged and
    // resends it on the next transport (unlike the reference client, which loses it).
    if (!this.isOpen) return false;
    this.corkForBurst();
    const full = this.ws.bufferedAmount + frame.length >= this.highWaterBytes;
    if (full) {
      this.waitingForDrain = true;
      this.ws.send(frame, { binary: true }, this.onFlushed);
      return false;
    }
    this.ws.send(frame, { binary: true });
    return true;
  }

  sendText(text: string): void {
    if (this.isOpen) this.ws.send(text, { binary: false });
  }

  /**
   * Resolves true once the peer has sent anything on this connection (a frame, a ping, or the pong to the ping
   * this sends now), false if it closes or `timeoutMs` passes first: an accepted WebSocket is not yet a live one.
   */
  whenAlive(timeoutMs: number): Promise<boolean> {
    if (this.alive) return Promise.resolve(true);
    if (!this.isOpen) return Promise.resolve(false);
    this.ws.ping();
    return new Promise((resolve) => {
      const settle = (alive: boolean): void => {
        clearTimeout(timer);
        this.off('alive', onAlive);
        this.off('close', onClose);
        resolve(alive);
      };
      const onAlive = (): void => settle(true);
      const onClose = (): void => settle(false);
      const timer = setTimeout(() => settle(false), timeoutMs);
      this.once('alive', onAlive);
      this.once('close', onClose);
    });
  }

  private markAlive(): void {
    if (this.alive) return;
    this.alive = true;
    this.emit('alive');
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.ws.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Whatever the peer sent meanwhile waited unread: the silence was ours, not the peer's.
    this.lastReceiveMs = Date.now();
    this.ws.resume();
  }

  close(code = 1000, reason = ''): void {
    this.stopPing();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  terminate(): void {
    this.stopPing();
    this.ws.terminate();
  }

  /**
   * The channel sends in bursts (a window's worth of messages, or one ack per message of a received chunk):
   * cork the socket until the end of the current tick so a burst leaves in one writev instead of one syscall
   * per frame. `ws` nests its own cork/uncork inside ours.
   */
  private corkForBurst(): void {
    if (this.corkedSocket !== undefined) return;
    const socket = (this.ws as unknown as { _socket?: Duplex | null })._socket;
    if (!socket || socket.destroyed) return;
    this.corkedSocket = socket;
    socket.cork();
    process.nextTick(this.uncork);
  }

  private readonly uncork = (): void => {
    const socket = this.corkedSocket;
    this.corkedSocket = undefined;
    socket?.uncork();
  };

  // The send callback runs once the frame is handed to the kernel: the buffer has emptied up to it.
  private readonly onFlushed = (err?: Error): void => {
    if (err || !this.waitingForDrain) return;
    this.waitingForDrain = false;
    this.emit('drain');
  };

  private startPing(intervalMs: number, silenceTimeoutMs: number): void {
    this.pingTimer = setInterval(() => {
      if (!this.isOpen) return;
      // While we do not read, the peer's frames and pongs wait unread: not silence.
      if (this.paused) this.lastReceiveMs = Date.now();
      else if (Date.now() - this.lastReceiveMs > silenceTimeoutMs) {
        this.emit('silence', silenceTimeoutMs);
        this.terminate();
        return;
      }
      this.ws.ping();
    }, intervalMs);
    this.pingTimer.unref();
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }
}

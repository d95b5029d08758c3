import type { EventEmitter } from 'node:events';

/**
 * What the reliable channel needs from a connection: binary frames in and out, send backpressure, a read pause
 * (receive backpressure: the only kind the real agent feels), close. The WebSocket adapter is the only
 * production implementation; resume swaps one under a live channel.
 *
 * Events: `message` (frame: Buffer, isBinary: boolean), `drain` (send may continue after it returned false),
 * `close` (code: number, reason: string), `error` (err: Error).
 */
export interface Transport extends EventEmitter {
  /** Queue one binary frame. Returns false when the outgoing buffer is above its high-water mark. */
  sendBinary(frame: Buffer): boolean;
  /** Queue one text frame (OpenDataChannelInput). */
  sendText(text: string): void;
  /** True while frames can be sent. */
  readonly isOpen: boolean;
  /** Stop reading (TCP backpressure to the peer) until resume(); silence is not counted meanwhile. */
  pause(): void;
  resume(): void;
  /** Close gracefully. */
  close(code?: number, reason?: string): void;
  /** Drop the connection at once (fault injection, silence detected). */
  terminate(): void;
}

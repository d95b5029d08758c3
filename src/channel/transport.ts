import type { EventEmitter } from 'node:events';

/**
 * What the reliable channel needs from a connection: binary frames in and out, send backpressure, close.
 * No read pause: the channel always reads, because the peer's acks arrive here (see ReliableChannel).
 * The WebSocket adapter is the only production implementation; resume swaps one under a live channel.
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
  /** Close gracefully. */
  close(code?: number, reason?: string): void;
  /** Drop the connection at once (fault injection, silence detected). */
  terminate(): void;
}

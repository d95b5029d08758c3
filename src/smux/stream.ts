import { Duplex } from 'node:stream';
import { BridgeError, ErrorCode } from '../errors.js';

/**
 * What a stream needs from its session. Implemented by SmuxSession; not part of the public API.
 * @internal
 */
export interface SmuxStreamHost {
  /** True while frames can still be sent (the session is open or closing). */
  canSend(): boolean;
  /** Queue PSH frames for `data` (split as needed); call `callback` once the carrier took them without backpressure. */
  sendData(streamId: number, data: Buffer, callback: (err?: Error | null) => void): void;
  /** Queue a FIN frame. */
  sendFin(streamId: number): void;
  /** `bytes` left the stream's queue for its readable side: return them to the session budget. */
  releaseReceiveBytes(bytes: number): void;
  /** The stream is gone: forget its id and any budget it held. */
  streamDestroyed(stream: SmuxStream): void;
}

/**
 * One smux v1 stream as a Duplex. Created by {@link SmuxSession.openStream} or delivered by the session's
 * `stream` event; never constructed directly.
 *
 * FIN rules (SPEC §7: v1 has no half-close, and the agent answers a FIN by closing its destination connection
 * outright, reply and all):
 * - `end()` on the writable side sends no FIN; it only finishes the writable side.
 * - FIN goes out, once, when the stream is destroyed: by `destroy()`, or by autoDestroy once the readable side
 *   ended (the peer's FIN, after all its data was read) and the writable side finished.
 * - After the peer's FIN, local writes are discarded without an error (counted in `bytesDiscarded`). The peer
 *   has closed the stream and would drop them (xtaci/smux answers them with EOF); failing the write instead
 *   would make `pipeline()` destroy the local socket, and with it the reply still queued toward the local app.
 *
 * To send data and then FIN (what the agent does when its destination closes): `stream.end(data, () =>
 * stream.destroy())`. Calling `destroy()` right after `write()` can drop writes still buffered in the stream.
 *
 * Errors: when the session dies (carrier destroyed, protocol error, keep-alive timeout) open streams are destroyed
 * with that error, so listen for `error` (or use `pipeline`). A stream that already had the peer's FIN is left
 * to deliver its data and end normally, and so is every stream when the carrier ends cleanly (the service
 * ended the session: what arrived before that is delivered, then the readable side ends).
 */
export class SmuxStream extends Duplex {
  /** The smux stream id: odd when the client opened it (3, 5, …), even when the server did (2, 4, …). */
  readonly streamId: number;
  /** Bytes written after the peer's FIN, dropped on purpose (see the class comment). */
  bytesDiscarded = 0;

  readonly #host: SmuxStreamHost;
  /**
   * Data from the peer not yet handed to the readable side: it counts against the session's receive budget
   * until `_read` asks for it, so a reader that stops reading makes the session stop reading the carrier.
   */
  #queue: Buffer[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  /** The readable side asked for data and push() has not said stop since. */
  #wantRead = false;
  #remoteFin = false;
  #endPushed = false;
  #finSent = false;

  /** @internal */
  constructor(host: SmuxStreamHost, streamId: number) {
    // allowHalfOpen: the peer's FIN must not end our writable side (nor send our FIN) by itself.
    super({ allowHalfOpen: true });
    this.#host = host;
    this.streamId = streamId;
  }

  /** True once the peer sent FIN. */
  get remoteEnded(): boolean {
    return this.#remoteFin;
  }

  /** Peer data held for this stream and not yet handed to the readable side. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Session → stream: PSH data from the peer. Returns the bytes the session must charge to its receive
   * budget (0 when the data went straight to the readable side or was dropped).
   * @internal
   */
  receiveData(data: Buffer): number {
    if (this.#remoteFin || this.destroyed) return 0;
    if (this.#wantRead && this.#queuedBytes === 0) {
      this.#wantRead = this.push(data);
      return 0;
    }
    this.#queue.push(data);
    this.#queuedBytes += data.length;
    return data.length;
  }

  /** Session → stream: the peer sent FIN. The readable side ends after the data already received. @internal */
  receiveFin(): void {
    if (this.#remoteFin) return;
    this.#remoteFin = true;
    this.#flushQueue();
  }

  /**
   * Session → stream: the carrier ended cleanly, so the peer will send nothing more and hears nothing more:
   * end the readable side after the data received, as a FIN would; later writes are discarded. @internal
   */
  carrierEnded(): void {
    this.#finSent = true;
    this.receiveFin();
  }

  /** Session → stream: the session is gone, so no FIN can be sent. @internal */
  abandon(err: Error | undefined): void {
    this.#finSent = true;
    this.destroy(err);
  }

  override _read(): void {
    this.#wantRead = true;
    this.#flushQueue();
  }

  #flushQueue(): void {
    let released = 0;
    while (this.#wantRead && this.#queueHead < this.#queue.length && !this.destroyed) {
      const chunk = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as Buffer;
      this.#queuedBytes -= chunk.length;
      released += chunk.length;
      this.#wantRead = this.push(chunk);
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      // Compact now and then so a long queue of small frames does not grow without bound.
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    if (released > 0) this.#host.releaseReceiveBytes(released);
    if (this.#remoteFin && this.#queuedBytes === 0 && !this.#endPushed && !this.destroyed) {
      this.#endPushed = true;
      this.push(null);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.#remoteFin) {
      this.bytesDiscarded += chunk.length;
      callback();
      return;
    }
    if (!this.#host.canSend()) {
      callback(new BridgeError(ErrorCode.CHANNEL_CLOSED, `smux stream ${this.streamId}: the session is closed; open a new session`));
      return;
    }
    if (chunk.length === 0) {
      callback();
      return;
    }
    // A write still waiting on the carrier when the peer's FIN arrives falls under the discard rule too: if
    // the session then dies, this stream (kept to deliver its data) must not be failed by that write.
    this.#host.sendData(this.streamId, chunk, (err) => callback(this.#remoteFin ? null : err));
  }

  override _final(callback: (err?: Error | null) => void): void {
    // Deliberately no FIN here: see the class comment.
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.#finSent) {
      this.#finSent = true;
      if (this.#host.canSend()) this.#host.sendFin(this.streamId);
    }
    const held = this.#queuedBytes;
    this.#queue = [];
    this.#queueHead = 0;
    this.#queuedBytes = 0;
    if (held > 0) this.#host.releaseReceiveBytes(held);
    this.#host.streamDestroyed(this);
    callback(err);
  }
}

import { Duplex } from 'node:stream';

/** What a stream needs from its session. */
export interface SmuxStreamOwner {
  writeData(streamId: number, data: Buffer, cb: (err?: Error | null) => void): void;
  sendFin(streamId: number): void;
  streamReadRequested(): void;
  streamClosed(streamId: number): void;
}

/**
 * One smux stream as a Duplex.
 *
 * v1 has no half-close (SPEC §7): a FIN means the sender is done with the whole stream, and the agent answers
 * a FIN by closing its destination connection. So ending our writable side does not send FIN; FIN goes out
 * when the stream is destroyed, which autoDestroy does once both sides are done (after a remote FIN and our
 * end()), or the owner does when its local connection closes. Writes after a remote FIN are discarded: the
 * peer would drop them anyway (xtaci/smux answers them with EOF).
 */
export class SmuxStream extends Duplex {
  readonly streamId: number;
  private readonly owner: SmuxStreamOwner;
  private finSent = false;
  private remoteFin = false;

  constructor(owner: SmuxStreamOwner, streamId: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.owner = owner;
    this.streamId = streamId;
  }

  /** True once the peer sent FIN. */
  get remoteEnded(): boolean {
    return this.remoteFin;
  }

  /** Session → stream: data from the peer. */
  receive(data: Buffer): void {
    if (this.remoteFin || this.destroyed) return;
    this.push(data);
  }

  /** Session → stream: the peer sent FIN. */
  receiveFin(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    this.push(null);
  }

  override _read(): void {
    this.owner.streamReadRequested();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.remoteFin || this.finSent) {
      cb();
      return;
    }
    this.owner.writeData(this.streamId, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.finSent) {
      this.finSent = true;
      this.owner.sendFin(this.streamId);
    }
    this.owner.streamClosed(this.streamId);
    cb(err);
  }

  /** Session closing: no FIN, the carrier is gone. */
  abandon(err?: Error): void {
    this.finSent = true;
    this.destroy(err);
  }
}

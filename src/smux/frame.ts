import { ProtocolError } from '../errors.js';

/** smux commands (SPEC §7); UPD (4) exists only in version 2 and is rejected here. */
export const SmuxCommand = {
  Syn: 0,
  Fin: 1,
  Psh: 2,
  Nop: 3,
} as const;
export type SmuxCommand = (typeof SmuxCommand)[keyof typeof SmuxCommand];

/** The only version the Session Manager agent speaks. */
export const SMUX_VERSION = 1;
/** version(1) cmd(1) length(2, LE) streamId(4, LE). */
export const SMUX_HEADER_BYTES = 8;
/**
 * Data bytes per PSH frame we send: with its header a frame is exactly 32 KiB, i.e. 32 whole 1 KiB channel
 * messages. Peers accept up to 65535 (the length field).
 */
export const SMUX_MAX_FRAME_DATA = 32 * 1024 - SMUX_HEADER_BYTES;

export interface SmuxFrame {
  cmd: SmuxCommand;
  streamId: number;
  data: Buffer;
}

const EMPTY = Buffer.alloc(0);

export function encodeFrame(frame: { cmd: SmuxCommand; streamId: number; data?: Buffer }): Buffer {
  const data = frame.data ?? EMPTY;
  if (data.length > 0xffff) throw new ProtocolError('length', `${data.length} bytes do not fit a smux frame (max 65535)`);
  const out = Buffer.allocUnsafe(SMUX_HEADER_BYTES + data.length);
  out[0] = SMUX_VERSION;
  out[1] = frame.cmd;
  out.writeUInt16LE(data.length, 2);
  out.writeUInt32LE(frame.streamId >>> 0, 4);
  data.copy(out, SMUX_HEADER_BYTES);
  return out;
}

function checkHeader(buf: Buffer, offset: number): SmuxCommand {
  const version = buf[offset]!;
  if (version !== SMUX_VERSION) throw new ProtocolError('smux.version', `expected ${SMUX_VERSION}, got ${version}`, offset);
  const cmd = buf[offset + 1]!;
  if (cmd > SmuxCommand.Nop) throw new ProtocolError('smux.cmd', `unknown command ${cmd}`, offset + 1);
  return cmd as SmuxCommand;
}

/** Decode exactly one whole frame. */
export function decodeFrame(buf: Buffer): SmuxFrame {
  if (buf.length < SMUX_HEADER_BYTES) throw new ProtocolError('smux.frame', `${buf.length} bytes is shorter than a header`, 0);
  const cmd = checkHeader(buf, 0);
  const length = buf.readUInt16LE(2);
  if (length !== buf.length - SMUX_HEADER_BYTES) throw new ProtocolError('smux.length', `says ${length} bytes but ${buf.length - SMUX_HEADER_BYTES} follow`, 2);
  return { cmd, streamId: buf.readUInt32LE(4), data: buf.subarray(SMUX_HEADER_BYTES) };
}

/**
 * Incremental parser for a smux byte stream split at arbitrary points. Frames wholly inside one chunk are
 * views into it; only a frame that straddles chunks is copied. Malformed input throws ProtocolError.
 */
export class FrameParser {
  /** Pieces of an incomplete frame, joined only once the whole frame is here (no quadratic copying). */
  private pieces: Buffer[] = [];
  private pieceBytes = 0;
  /** Bytes consumed so far, for error offsets. */
  private consumed = 0;

  push(chunk: Buffer): SmuxFrame[] {
    let buf: Buffer;
    if (this.pieces.length === 0) {
      buf = chunk;
    } else {
      this.pieces.push(chunk);
      this.pieceBytes += chunk.length;
      if (this.pieceBytes < this.neededBytes()) return [];
      buf = Buffer.concat(this.pieces, this.pieceBytes);
      this.pieces = [];
      this.pieceBytes = 0;
    }
    const frames: SmuxFrame[] = [];
    let offset = 0;
    while (buf.length - offset >= SMUX_HEADER_BYTES) {
      let cmd: SmuxCommand;
      try {
        cmd = checkHeader(buf, offset);
      } catch (err) {
        if (err instanceof ProtocolError) throw new ProtocolError(err.field, err.message, this.consumed + offset);
        throw err;
      }
      const length = buf.readUInt16LE(offset + 2);
      const end = offset + SMUX_HEADER_BYTES + length;
      if (end > buf.length) break;
      frames.push({ cmd, streamId: buf.readUInt32LE(offset + 4), data: buf.subarray(offset + SMUX_HEADER_BYTES, end) });
      offset = end;
    }
    this.consumed += offset;
    if (offset < buf.length) {
      // Copy the remainder: the caller may reuse its chunk, and a view would pin a large buffer.
      const rest = Buffer.from(buf.subarray(offset));
      this.pieces = [rest];
      this.pieceBytes = rest.length;
    }
    return frames;
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pieceBytes;
  }

  /** Size of the frame being assembled, or just a header's worth while its header is incomplete. */
  private neededBytes(): number {
    if (this.pieceBytes < SMUX_HEADER_BYTES) return SMUX_HEADER_BYTES;
    const first = this.pieces[0]!;
    const head = first.length >= SMUX_HEADER_BYTES ? first : Buffer.concat(this.pieces, this.pieceBytes);
    return SMUX_HEADER_BYTES + head.readUInt16LE(2);
  }
}

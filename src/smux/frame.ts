import { ProtocolError } from '../errors.js';

/*
 * smux version 1 frames (SPEC §7, xtaci/smux frame.go). Pure and synchronous: bytes in, frames out.
 *
 *   0        1     2               4                         8
 *   +--------+-----+---------------+-------------------------+----------------
 *   |version | cmd | length (LE16) | streamId (LE32)         | data (length bytes)
 *   +--------+-----+---------------+-------------------------+----------------
 */

/** The only smux version the SSM agent speaks with the port plugin (SPEC §7). */
export const SMUX_VERSION = 1;
/** version + cmd + length + streamId. */
export const FRAME_HEADER_BYTES = 8;
/** Largest data a sender puts in one PSH frame (xtaci/smux default MaxFrameSize). */
export const MAX_FRAME_DATA_BYTES = 32_768;
/** Largest data the 16-bit length field can describe; we accept up to this from a peer. */
export const MAX_FRAME_LENGTH = 0xffff;

/** smux v1 commands (SPEC §7). UPD (4) exists only in version 2 and is rejected here. */
export const SmuxCommand = {
  /** Open a stream. */
  Syn: 0,
  /** The sender closed the stream (v1 has no half-close). */
  Fin: 1,
  /** Stream data. */
  Psh: 2,
  /** Keep-alive; stream id 0. */
  Nop: 3,
} as const;
export type SmuxCommand = (typeof SmuxCommand)[keyof typeof SmuxCommand];

/** One decoded smux frame. `data` is empty for everything but PSH. */
export interface SmuxFrame {
  cmd: SmuxCommand;
  streamId: number;
  data: Buffer;
}

const COMMAND_NAMES = ['SYN', 'FIN', 'PSH', 'NOP'] as const;
const EMPTY = Buffer.alloc(0);
const OFF_CMD = 1;
const OFF_LENGTH = 2;
const OFF_STREAM_ID = 4;

/** The printable name of a command, for logs and messages. */
export function commandName(cmd: number): string {
  return COMMAND_NAMES[cmd] ?? `cmd ${cmd}`;
}

/** The 8-byte header of a frame carrying `length` data bytes. Used by the session to write data without a copy. */
export function encodeFrameHeader(cmd: SmuxCommand, streamId: number, length: number): Buffer {
  if (!Number.isInteger(cmd) || cmd < 0 || cmd > SmuxCommand.Nop) throw new ProtocolError('cmd', `unknown smux v1 command ${String(cmd)}`);
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff_ffff) {
    throw new ProtocolError('streamId', `${streamId} is not a 32-bit unsigned integer`);
  }
  if (length > MAX_FRAME_LENGTH) throw new ProtocolError('length', `${length} data bytes do not fit the 16-bit length field`);
  if (length !== 0 && cmd !== SmuxCommand.Psh) throw new ProtocolError('length', `${commandName(cmd)} carries no data in smux v1`);
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = SMUX_VERSION;
  header[OFF_CMD] = cmd;
  header.writeUInt16LE(length, OFF_LENGTH);
  header.writeUInt32LE(streamId, OFF_STREAM_ID);
  return header;
}

/** Encode one frame for the wire. Throws ProtocolError for data that cannot be framed. */
export function encodeFrame(frame: { cmd: SmuxCommand; streamId: number; data?: Buffer }): Buffer {
  const data = frame.data ?? EMPTY;
  const header = encodeFrameHeader(frame.cmd, frame.streamId, data.length);
  return data.length === 0 ? header : Buffer.concat([header, data], FRAME_HEADER_BYTES + data.length);
}

/**
 * Validate a header at `buf[at..at+8)` and return its data length. `base` is the offset of `buf[at]` in the
 * caller's coordinates, so errors name the absolute offset.
 */
function readHeaderLength(buf: Buffer, at: number, base: number): number {
  const version = buf[at]!;
  if (version !== SMUX_VERSION) throw new ProtocolError('version', `expected smux version ${SMUX_VERSION}, got ${version}`, base);
  const cmd = buf[at + OFF_CMD]!;
  if (cmd > SmuxCommand.Nop) {
    const hint = cmd === 4 ? ' (UPD exists only in smux version 2)' : '';
    throw new ProtocolError('cmd', `unknown smux v1 command ${cmd}${hint}`, base + OFF_CMD);
  }
  const length = buf.readUInt16LE(at + OFF_LENGTH);
  // xtaci/smux v1 reads no data after SYN, FIN or NOP, so a length there would desynchronise a real peer.
  if (length !== 0 && cmd !== SmuxCommand.Psh) {
    throw new ProtocolError('length', `${commandName(cmd)} must carry no data, got length ${length}`, base + OFF_LENGTH);
  }
  return length;
}

/**
 * Decode exactly one whole frame. Throws ProtocolError (field and offset) for a short buffer, trailing bytes,
 * a version other than 1 or an unknown command. `data` is a view into `buf` (no copy).
 */
export function decodeFrame(buf: Buffer): SmuxFrame {
  if (buf.length < FRAME_HEADER_BYTES) {
    throw new ProtocolError('header', `${buf.length} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte frame header`, 0);
  }
  const length = readHeaderLength(buf, 0, 0);
  if (buf.length !== FRAME_HEADER_BYTES + length) {
    throw new ProtocolError('length', `header announces ${length} data bytes but ${buf.length - FRAME_HEADER_BYTES} follow`, OFF_LENGTH);
  }
  return {
    cmd: buf[OFF_CMD] as SmuxCommand,
    streamId: buf.readUInt32LE(OFF_STREAM_ID),
    data: length === 0 ? EMPTY : buf.subarray(FRAME_HEADER_BYTES),
  };
}

/**
 * Incremental frame parser for a byte stream: frames may be split across chunks at any byte and one chunk
 * may hold many frames. A frame wholly inside one chunk is delivered as a view of that chunk; only a frame that
 * straddles chunks is copied (its header into a fixed 8-byte buffer, its data into one buffer of exact size).
 *
 * A delivered view keeps its whole chunk alive for as long as it is held; the session's receive budget
 * counts data bytes only, as xtaci/smux does.
 *
 * Frames are delivered to `onFrame` in order as they complete, so the frames before a malformed one are
 * still delivered. After a ProtocolError the parser is dead: every later `push` throws the same error.
 * Error offsets count bytes from the first byte ever pushed.
 */
export class FrameParser {
  readonly #onFrame: (frame: SmuxFrame) => void;
  /** Header bytes of a straddling frame collected so far. */
  readonly #header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  #headerBytes = 0;
  /** Data of a straddling frame whose header is complete; undefined when not inside such a frame. */
  #data: Buffer | undefined;
  #dataBytes = 0;
  /** Stream offset of the current chunk's first byte. */
  #consumed = 0;
  #error: ProtocolError | undefined;

  constructor(onFrame: (frame: SmuxFrame) => void) {
    this.#onFrame = onFrame;
  }

  /** Bytes held for a frame that is not complete yet. */
  get bufferedBytes(): number {
    return this.#headerBytes + this.#dataBytes;
  }

  /** Feed the next chunk of the byte stream. Throws ProtocolError for malformed input. */
  push(chunk: Buffer): void {
    if (this.#error !== undefined) throw this.#error;
    try {
      this.#parse(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.#error = err;
      throw err;
    }
  }

  #parse(chunk: Buffer): void {
    const base = this.#consumed;
    this.#consumed += chunk.length;
    let pos = 0;
    if (this.#headerBytes > 0 || this.#data !== undefined) {
      pos = this.#continueStraddling(chunk, base);
      if (pos < 0) return;
    }
    // Hot path: whole frames inside this chunk, delivered as views.
    while (chunk.length - pos >= FRAME_HEADER_BYTES) {
      const length = readHeaderLength(chunk, pos, base + pos);
      const end = pos + FRAME_HEADER_BYTES + length;
      if (end > chunk.length) {
        // The data runs past this chunk: keep the header, copy what data we have.
        chunk.copy(this.#header, 0, pos, pos + FRAME_HEADER_BYTES);
        this.#headerBytes = FRAME_HEADER_BYTES;
        this.#startData(length, chunk, pos + FRAME_HEADER_BYTES);
        return;
      }
      const frame: SmuxFrame = {
        cmd: chunk[pos + OFF_CMD] as SmuxCommand,
        streamId: chunk.readUInt32LE(pos + OFF_STREAM_ID),
        data: length === 0 ? EMPTY : chunk.subarray(pos + FRAME_HEADER_BYTES, end),
      };
      pos = end;
      this.#onFrame(frame);
    }
    if (pos < chunk.length) this.#headerBytes = chunk.copy(this.#header, 0, pos);
  }

  /** Complete a frame begun in earlier chunks. Returns where whole-frame parsing resumes, or -1 if `chunk` is used up. */
  #continueStraddling(chunk: Buffer, base: number): number {
    let pos = 0;
    if (this.#data === undefined) {
      const take = Math.min(FRAME_HEADER_BYTES - this.#headerBytes, chunk.length);
      chunk.copy(this.#header, this.#headerBytes, 0, take);
      this.#headerBytes += take;
      pos = take;
      if (this.#headerBytes < FRAME_HEADER_BYTES) return -1;
      const length = readHeaderLength(this.#header, 0, base - (FRAME_HEADER_BYTES - take));
      if (chunk.length - pos >= length) {
        // The data is wholly in this chunk: no copy needed after all.
        this.#headerBytes = 0;
        this.#emitHeader(length === 0 ? EMPTY : chunk.subarray(pos, pos + length));
        return pos + length;
      }
      this.#startData(length, chunk, pos);
      return -1;
    }
    const data = this.#data;
    const take = Math.min(data.length - this.#dataBytes, chunk.length);
    chunk.copy(data, this.#dataBytes, 0, take);
    this.#dataBytes += take;
    if (this.#dataBytes < data.length) return -1;
    this.#data = undefined;
    this.#dataBytes = 0;
    this.#headerBytes = 0;
    this.#emitHeader(data);
    return take;
  }

  #startData(length: number, chunk: Buffer, from: number): void {
    this.#data = Buffer.allocUnsafe(length);
    this.#dataBytes = chunk.copy(this.#data, 0, from);
  }

  /** Deliver the frame whose header sits in `#header`. */
  #emitHeader(data: Buffer): void {
    this.#onFrame({ cmd: this.#header[OFF_CMD] as SmuxCommand, streamId: this.#header.readUInt32LE(OFF_STREAM_ID), data });
  }
}

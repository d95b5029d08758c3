import type net from 'node:net';
import { within } from '../helpers/servers.js';
import { encodeFrame, FrameParser, SmuxCommand, type SmuxFrame } from '../../src/smux/index.js';

/*
 * The far end of a socket speaking raw smux frames: records every frame it receives (to assert what a
 * SmuxSession put on the wire) and sends hand-made frames or garbage back.
 */
export class RawPeer {
  readonly frames: SmuxFrame[] = [];
  parseError: unknown;
  readonly #waiters = new Set<() => void>();

  constructor(readonly socket: net.Socket) {
    const parser = new FrameParser((frame) => {
      // Copy: the data views the socket chunk.
      this.frames.push({ ...frame, data: Buffer.from(frame.data) });
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (err) {
        this.parseError = err;
      }
      for (const wake of this.#waiters) wake();
    });
  }

  send(cmd: SmuxCommand, streamId: number, data?: Buffer | string): void {
    this.socket.write(encodeFrame({ cmd, streamId, data: typeof data === 'string' ? Buffer.from(data) : data }));
  }

  /** Frames for one stream, as `CMD` or `PSH:data` strings. */
  framesFor(streamId: number): string[] {
    return this.frames.filter((f) => f.streamId === streamId).map(describeFrame);
  }

  /** Resolve once a received frame matches; reject after `timeoutMs`. */
  async waitForFrame(match: (f: SmuxFrame) => boolean, timeoutMs = 2_000, what = 'a frame'): Promise<SmuxFrame> {
    let wake: (() => void) | undefined;
    const found = new Promise<SmuxFrame>((resolve) => {
      wake = () => {
        const f = this.frames.find(match);
        if (f) resolve(f);
      };
      this.#waiters.add(wake);
      wake();
    });
    try {
      return await within(found, timeoutMs, `raw peer waiting for ${what}`);
    } finally {
      this.#waiters.delete(wake!);
    }
  }
}

export function describeFrame(f: SmuxFrame): string {
  const name = ['SYN', 'FIN', 'PSH', 'NOP'][f.cmd]!;
  return f.cmd === SmuxCommand.Psh ? `${name}:${f.data.toString()}` : name;
}

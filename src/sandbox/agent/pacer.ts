import { Transform, type TransformCallback } from 'node:stream';
import { MAX_STREAM_PAYLOAD_BYTES } from '../../protocol/index.js';

/**
 * Agent-like pacing (SPEC §7): the official agent reads at most 1 KiB, sends one message, then sleeps 1 ms.
 * Off by default; the sandbox's `pacing` option turns it on to show what real agents allow.
 */
export class Pacer extends Transform {
  private readonly chunkBytes: number;
  private readonly delayMs: number;

  constructor(delayMs = 1, chunkBytes = MAX_STREAM_PAYLOAD_BYTES) {
    super();
    this.delayMs = delayMs;
    this.chunkBytes = chunkBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let offset = 0;
    const step = (): void => {
      if (offset >= chunk.length || this.destroyed) {
        cb();
        return;
      }
      this.push(chunk.subarray(offset, offset + this.chunkBytes));
      offset += this.chunkBytes;
      setTimeout(step, this.delayMs);
    };
    step();
  }
}

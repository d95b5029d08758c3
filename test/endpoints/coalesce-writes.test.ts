import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../src/coalesce-writes.js';

/** A sink that records each call it gets: one entry per `_write` / `_writev`. */
function recordingSink(highWaterMark: number) {
  const calls: number[] = [];
  const received: Buffer[] = [];
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      calls.push(1);
      received.push(chunk);
      cb();
    },
    writev(chunks, cb) {
      calls.push(chunks.length);
      for (const c of chunks) received.push(c.chunk as Buffer);
      cb();
    },
  });
  return { sink, calls, received };
}

describe('coalesceWrites', () => {
  it('hands the writes of one tick to the sink in one call, in order', async () => {
    const { sink, calls, received } = recordingSink(1024 * 1024);
    coalesceWrites(sink);
    for (let i = 0; i < 100; i++) sink.write(Buffer.from([i]));
    await new Promise((r) => setImmediate(r));
    for (let i = 100; i < 110; i++) sink.write(Buffer.from([i]));
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([100, 10]);
    expect(Buffer.concat(received)).toEqual(Buffer.from(Array.from({ length: 110 }, (_, i) => i)));
  });

  it('keeps backpressure: false past the high-water mark, then drain', async () => {
    const { sink } = recordingSink(4096);
    coalesceWrites(sink);
    const results = Array.from({ length: 8 }, () => sink.write(Buffer.alloc(1024)));
    expect(results.slice(0, 3)).toEqual([true, true, true]);
    expect(results.at(-1)).toBe(false);
    await new Promise((r) => sink.once('drain', r));
    expect(sink.writableLength).toBe(0);
  });

  it('lets end() flush what the tick had written', async () => {
    const { sink, received } = recordingSink(1024);
    coalesceWrites(sink);
    sink.write('a');
    sink.end('b');
    await new Promise((r) => sink.once('finish', r));
    expect(Buffer.concat(received).toString()).toBe('ab');
  });
});

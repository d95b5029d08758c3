import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { copyInBatches } from '../../src/endpoints/copy-in-batches.js';

/**
 * A sink that records every write it gets; while `blocked`, each write's callback waits (a reader that
 * does not read), so the sink's buffer fills past its high-water mark.
 */
function recordingSink(highWaterMark: number) {
  const writes: Buffer[] = [];
  const waiting: Array<() => void> = [];
  const state = { blocked: false };
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk);
      if (state.blocked) waiting.push(cb);
      else cb();
    },
  });
  const unblock = (): void => {
    state.blocked = false;
    for (const cb of waiting.splice(0)) cb();
  };
  return { sink, writes, state, unblock };
}

/** A source the test pushes into, like the channel's `data` (1 MiB high-water mark). */
function pushSource(highWaterMark = 1024 * 1024) {
  return { source: new Readable({ highWaterMark, read: () => {} }) };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('copyInBatches', () => {
  it('writes the payloads pushed in one tick as one buffer, in order, tick after tick', async () => {
    const { sink, writes } = recordingSink(16 * 1024);
    const { source } = pushSource();
    copyInBatches(source, sink);
    for (let i = 0; i < 100; i++) source.push(Buffer.alloc(1024, i));
    await tick();
    for (let i = 100; i < 110; i++) source.push(Buffer.alloc(1024, i));
    await tick();
    expect(writes.map((w) => w.length)).toEqual([100 * 1024, 10 * 1024]);
    const all = Buffer.concat(writes);
    for (let i = 0; i < 110; i++) expect(all[i * 1024]).toBe(i);
  });

  it('reads nothing while the sink is over its high-water mark, then resumes on drain without loss', async () => {
    const { sink, writes, state, unblock } = recordingSink(4096);
    const { source } = pushSource(64 * 1024);
    copyInBatches(source, sink);
    state.blocked = true;
    source.push(Buffer.alloc(8192, 1));
    await tick();
    expect(writes).toHaveLength(1);
    for (let i = 0; i < 20; i++) source.push(Buffer.alloc(1024, 2));
    await tick();
    // Backpressure: the sink said stop, so the bytes wait in the source.
    expect(writes).toHaveLength(1);
    expect(source.readableLength).toBe(20 * 1024);
    unblock();
    await tick();
    expect(source.readableLength).toBe(0);
    expect(Buffer.concat(writes)).toEqual(Buffer.concat([Buffer.alloc(8192, 1), Buffer.alloc(20 * 1024, 2)]));
  });

  it('never takes more than the source high-water mark in one write', async () => {
    const { sink, writes, state, unblock } = recordingSink(1024);
    const { source } = pushSource(16 * 1024);
    copyInBatches(source, sink);
    state.blocked = true;
    source.push(Buffer.alloc(1));
    await tick();
    // Pushed past the high-water mark while the sink is blocked (push only says false).
    for (let i = 0; i < 64; i++) source.push(Buffer.alloc(1024));
    unblock();
    await tick();
    await tick();
    expect(writes.slice(1).every((w) => w.length <= 16 * 1024)).toBe(true);
    expect(writes.reduce((n, w) => n + w.length, 0)).toBe(1 + 64 * 1024);
  });

  it("lets the source end ('end' fires) once everything was written", async () => {
    const { sink, writes } = recordingSink(1024);
    const { source } = pushSource();
    copyInBatches(source, sink);
    const ended = new Promise((r) => source.once('end', r));
    source.push(Buffer.from('abc'));
    source.push(null);
    await ended;
    expect(Buffer.concat(writes).toString()).toBe('abc');
  });

  it('stops copying when told to', async () => {
    const { sink, writes } = recordingSink(1024);
    const { source } = pushSource();
    const stop = copyInBatches(source, sink);
    source.push(Buffer.from('a'));
    await tick();
    stop();
    source.push(Buffer.from('b'));
    await tick();
    expect(Buffer.concat(writes).toString()).toBe('a');
  });
});

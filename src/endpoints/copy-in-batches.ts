import type { Readable, Writable } from 'node:stream';

/**
 * Copy `source` to `sink` like `source.pipe(sink, { end: false })`, but one write per batch: everything
 * `source` buffered since the last batch leaves as one buffer (at most the source's high-water mark).
 *
 * The channel pushes one ≤ 1 KiB payload at a time, dozens per tick. Through `pipe` each is a 'data' event
 * and a write request of its own, and a stdout pipe (16 KiB high-water mark) pauses and resumes the source
 * every 16 payloads. Read in paused mode, a tick's payloads come out of `read()` as one copy, which is cheaper.
 * Backpressure is the same: when `sink.write` returns false, nothing is read until 'drain', and the source
 * fills up to its own limits. Returns a function that stops the copy (like `unpipe`).
 */
export function copyInBatches(source: Readable, sink: Writable): () => void {
  let waitingForDrain = false;
  const onReadable = (): void => {
    if (waitingForDrain) return;
    const maxBatch = source.readableHighWaterMark;
    let chunk: Buffer | null;
    // read() with no size takes everything, and also notices the end once nothing is left.
    while ((chunk = source.read(source.readableLength > maxBatch ? maxBatch : undefined) as Buffer | null) !== null) {
      if (!sink.write(chunk)) {
        waitingForDrain = true;
        sink.once('drain', onDrain);
        return;
      }
    }
  };
  const onDrain = (): void => {
    waitingForDrain = false;
    onReadable();
  };
  source.on('readable', onReadable);
  return () => {
    source.off('readable', onReadable);
    sink.off('drain', onDrain);
  };
}

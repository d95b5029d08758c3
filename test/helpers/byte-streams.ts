import { createHash, randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';

/*
 * Bulk byte transfers with SHA-256 on both ends: the writer generates random chunks lazily (never the whole
 * payload in memory) and honours backpressure (write() false → wait for 'drain').
 */

export interface WriteProgress {
  /** Bytes handed to write() so far. */
  written: number;
  /** Times write() returned false. */
  stalls: number;
  /** Resolves with the hex SHA-256 of everything written, once all is written (end() is not called). */
  done: Promise<string>;
}

export function writeRandom(stream: Writable, totalBytes: number, chunkBytes = 64 * 1024): WriteProgress {
  const hash = createHash('sha256');
  const progress: WriteProgress = { written: 0, stalls: 0, done: Promise.resolve('') };
  progress.done = (async () => {
    while (progress.written < totalBytes) {
      const chunk = randomBytes(Math.min(chunkBytes, totalBytes - progress.written));
      hash.update(chunk);
      progress.written += chunk.length;
      if (!stream.write(chunk)) {
        progress.stalls++;
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            stream.off('error', onError);
            stream.off('close', onClose);
            resolve();
          };
          const onError = (err: Error): void => {
            stream.off('drain', onDrain);
            stream.off('close', onClose);
            reject(err);
          };
          const onClose = (): void => {
            stream.off('drain', onDrain);
            stream.off('error', onError);
            reject(new Error('stream closed while waiting for drain'));
          };
          stream.once('drain', onDrain);
          stream.once('error', onError);
          stream.once('close', onClose);
        });
      }
    }
    return hash.digest('hex');
  })();
  // Awaiting is up to the test; a writer abandoned at teardown must not surface as an unhandled rejection.
  progress.done.catch(() => {});
  return progress;
}

export interface ReadProgress {
  received: number;
  /** Resolves with the hex SHA-256 of the first `totalBytes` bytes; rejects if more arrive first or the stream fails. */
  done: Promise<string>;
}

/**
 * Consume `stream` (flowing mode) until `totalBytes` arrived. Listeners stay on afterwards, so extra bytes
 * (duplicates) still count in `received` and a later stream error never goes unhandled.
 */
export function readHashed(stream: Readable, totalBytes: number): ReadProgress {
  const hash = createHash('sha256');
  const progress: ReadProgress = { received: 0, done: Promise.resolve('') };
  progress.done = new Promise<string>((resolve, reject) => {
    let settled = false;
    const settle = (result: string | Error): void => {
      if (settled) return;
      settled = true;
      if (typeof result === 'string') resolve(result);
      else reject(result);
    };
    stream.on('data', (chunk: Buffer) => {
      const before = progress.received;
      progress.received += chunk.length;
      if (settled) return;
      if (progress.received > totalBytes) {
        settle(new Error(`received ${progress.received} bytes, more than the ${totalBytes} sent (had ${before})`));
        return;
      }
      hash.update(chunk);
      if (progress.received === totalBytes) settle(hash.digest('hex'));
    });
    stream.on('error', (err: Error) => settle(err));
    stream.on('end', () => settle(new Error(`stream ended after ${progress.received} of ${totalBytes} bytes`)));
    // A 'data' listener alone does not restart a stream paused explicitly (as the backpressure test does).
    stream.resume();
    if (totalBytes === 0) settle(hash.digest('hex'));
  });
  progress.done.catch(() => {});
  return progress;
}

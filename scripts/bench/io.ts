import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type WebSocket from 'ws';
import { toMBps } from './types.js';

/*
 * Both ends of the throughput benchmarks, shared by the bench process and its peer process
 * (scripts/bench/peer.ts): senders honour backpressure, receivers time from first to last byte.
 */

/** A fixed random buffer: the data is not the point, the cost of generating it would be. */
const SOURCE = randomBytes(64 * 1024);

/** Write `totalBytes` into a stream in 64 KiB chunks; write() false → wait for 'drain'. */
export async function writeBytes(stream: Writable, totalBytes: number, chunkBytes = 64 * 1024): Promise<void> {
  let left = totalBytes;
  while (left > 0) {
    const n = Math.min(chunkBytes, left, SOURCE.length);
    left -= n;
    if (!stream.write(n === SOURCE.length ? SOURCE : SOURCE.subarray(0, n))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          stream.off('drain', onDrain);
          reject(err);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    }
  }
}

/** Resolves with MB/s once `totalBytes` came out of `readable` (timed from the first chunk). */
export function receiveBytes(readable: Readable, totalBytes: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let received = 0;
    let firstMs = 0;
    let firstBytes = 0;
    const onData = (chunk: Buffer): void => {
      if (received === 0) {
        firstMs = performance.now();
        firstBytes = chunk.length;
      }
      received += chunk.length;
      if (received >= totalBytes) {
        readable.off('data', onData);
        readable.off('error', reject);
        // The first chunk arrived at firstMs: it is not part of the timed transfer.
        resolve(toMBps(received - firstBytes, performance.now() - firstMs));
      }
    };
    readable.on('data', onData);
    readable.once('error', reject);
  });
}

/**
 * Send `totalBytes` as binary frames of `frameBytes` through `ws`, keeping at most `highWaterBytes` queued.
 * With `cork`, each burst leaves in one writev (as WebSocketTransport does); without, one write per frame.
 */
export async function sendFrames(ws: WebSocket, totalBytes: number, frameBytes: number, cork: boolean, highWaterBytes = 256 * 1024): Promise<void> {
  const frame = SOURCE.subarray(0, frameBytes);
  const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
  let left = totalBytes;
  while (left > 0) {
    if (cork) socket.cork();
    let last: Promise<void> | undefined;
    while (left > 0 && ws.bufferedAmount < highWaterBytes) {
      left -= frameBytes;
      if (left <= 0 || ws.bufferedAmount + frameBytes >= highWaterBytes) {
        last = new Promise<void>((resolve, reject) => ws.send(frame, { binary: true }, (err) => (err ? reject(err) : resolve())));
      } else {
        ws.send(frame, { binary: true });
      }
    }
    if (cork) process.nextTick(() => socket.uncork());
    if (last) await last;
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Resolves with MB/s once `totalBytes` of binary frames arrived on `ws` (timed from the first frame). */
export function receiveFrames(ws: WebSocket, totalBytes: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let received = 0;
    let firstMs = 0;
    let firstBytes = 0;
    const onMessage = (data: Buffer): void => {
      if (received === 0) {
        firstMs = performance.now();
        firstBytes = data.length;
      }
      received += data.length;
      if (received >= totalBytes) {
        ws.off('message', onMessage);
        resolve(toMBps(received - firstBytes, performance.now() - firstMs));
      }
    };
    ws.on('message', onMessage);
    ws.once('close', () => reject(new Error(`WebSocket closed after ${received} of ${totalBytes} bytes`)));
  });
}

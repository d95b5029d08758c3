import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

import { listenTcp, type TestServer } from '../../scripts/lib/tcp-server.js';

export { listenTcp, type TestServer };

/** Echo: every byte back. */
export function echoServer(): Promise<TestServer> {
  return listenTcp((socket) => socket.pipe(socket));
}

/**
 * Exchange: reads the first 8 bytes as the number of bytes the client will send, then sends that many random
 * bytes back while reading; replies after EOF of the request with the SHA-256 of what it got and of what it sent.
 * Used for both-direction integrity: the client compares both digests with its own.
 */
export function exchangeServer(): Promise<TestServer> {
  return listenTcp((socket) => {
    let header = Buffer.alloc(0);
    let expected = -1;
    let received = 0;
    const inHash = createHash('sha256');
    const outHash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => {
      if (expected < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 8) return;
        expected = Number(header.readBigUInt64BE(0));
        chunk = header.subarray(8);
        void sendRandom(socket, expected, outHash).then(() => maybeFinish());
      }
      inHash.update(chunk);
      received += chunk.length;
      maybeFinish();
    });
    let sentAll = false;
    let finished = false;
    async function sendRandom(s: net.Socket, total: number, hash: ReturnType<typeof createHash>): Promise<void> {
      let left = total;
      while (left > 0) {
        const chunk = randomBytes(Math.min(64 * 1024, left));
        hash.update(chunk);
        left -= chunk.length;
        if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
      }
      sentAll = true;
    }
    function maybeFinish(): void {
      if (finished || !sentAll || received < expected) return;
      finished = true;
      socket.end(Buffer.from(`${inHash.digest('hex')}${outHash.digest('hex')}`));
    }
  });
}

/**
 * Client side of exchangeServer: send `bytes` random bytes, read the same number back plus the two digests,
 * and return whether both directions match.
 */
export async function exchange(port: number, bytes: number, host = '127.0.0.1'): Promise<{ upOk: boolean; downOk: boolean; received: number }> {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const upHash = createHash('sha256');
  const downHash = createHash('sha256');
  let received = 0;
  let tail = Buffer.alloc(0);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      const room = Math.max(0, bytes - received);
      if (room > 0) downHash.update(chunk.subarray(0, room));
      if (chunk.length > room) tail = Buffer.concat([tail, chunk.subarray(room)]);
      received += Math.min(room, chunk.length);
    });
    socket.on('end', resolve);
    socket.on('error', reject);
  });
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  socket.write(header);
  let left = bytes;
  while (left > 0) {
    const chunk = randomBytes(Math.min(64 * 1024, left));
    upHash.update(chunk);
    left -= chunk.length;
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  await done;
  socket.destroy();
  const digests = tail.toString('utf8');
  return { upOk: digests.slice(0, 64) === upHash.digest('hex'), downOk: digests.slice(64, 128) === downHash.digest('hex'), received };
}

/** Resolve within `ms` or reject with `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

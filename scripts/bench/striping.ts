import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { spawnCli, stop, TARGET, untilStderrMatches, withSandbox } from './cli-harness.js';
import { listenTcp } from '../lib/tcp-server.js';
import { within } from './servers.js';
import { MiB, toMBps, type BenchRow } from './types.js';

/*
 * Striping (issue 17): the sandbox paced like the real agent (one 1 KiB message per ms per session, ~1 MB/s),
 * 8 connections at once, each downloading 2 MiB and uploading 64 KiB, through `forward --sessions N`. Every byte is
 * checked both ways (SHA-256 at both ends); a mismatch fails the sample. The 4-session row shows its ratio to the
 * 1-session row of the same run (its "ceiling" column).
 */

const CONNECTIONS = 8;
const DOWN = 2 * MiB;
const UP = 64 * 1024;
const STRIPE_PORT = '29';

/**
 * Reads an 8-byte count and then UP bytes; sends `count` random bytes, then 128 hex characters: the SHA-256 of
 * what it received and of what it sent; then ends.
 */
function startStripeServer() {
  return listenTcp((s) => {
    s.on('error', () => {});
    let header = Buffer.alloc(0);
    let expected = -1;
    let received = 0;
    const upHash = createHash('sha256');
    s.on('data', (chunk: Buffer) => {
      if (expected < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 8) return;
        expected = Number(header.readBigUInt64BE(0));
        chunk = header.subarray(8);
      }
      upHash.update(chunk);
      received += chunk.length;
      if (received === UP) void send(expected, upHash.digest('hex'));
    });
    async function send(count: number, upDigest: string): Promise<void> {
      const downHash = createHash('sha256');
      for (let left = count; left > 0; ) {
        const chunk = randomBytes(Math.min(64 * 1024, left));
        downHash.update(chunk);
        left -= chunk.length;
        if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
      }
      s.end(`${upDigest}${downHash.digest('hex')}`);
    }
  });
}

/** One connection: send the count and UP bytes, read DOWN bytes and the digests; throws unless both match. */
async function transfer(port: number): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const up = randomBytes(UP);
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(DOWN));
  s.write(Buffer.concat([header, up]));
  const downHash = createHash('sha256');
  let got = 0;
  let tail = '';
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      const room = Math.max(0, DOWN - got);
      downHash.update(d.subarray(0, room));
      if (d.length > room) tail += d.subarray(room).toString('latin1');
      got += Math.min(room, d.length);
    });
    s.once('end', resolve);
    s.once('error', reject);
  });
  s.destroy();
  const upOk = tail.slice(0, 64) === createHash('sha256').update(up).digest('hex');
  const downOk = tail.slice(64, 128) === downHash.digest('hex');
  if (got !== DOWN || !upOk || !downOk) throw new Error(`striping: a connection's bytes differ (received ${got} of ${DOWN}, up ${upOk ? 'ok' : 'WRONG'}, down ${downOk ? 'ok' : 'WRONG'})`);
}

/** Aggregate MB/s of CONNECTIONS parallel transfers through `forward --sessions N` against a paced sandbox. */
async function stripedDownload(sessions: number): Promise<number> {
  const server = await startStripeServer();
  try {
    return await withSandbox(
      async (endpoint) => {
        const cli = spawnCli(['forward', TARGET, '--remote-port', STRIPE_PORT, '--sessions', String(sessions), '--endpoint-url', endpoint, '--log-level', 'warn'], { stdin: 'ignore', stdout: 'ignore' });
        try {
          const port = Number((await untilStderrMatches(cli, /Listening on 127\.0\.0\.1:(\d+)/))[1]);
          const started = performance.now();
          await within(Promise.all(Array.from({ length: CONNECTIONS }, () => transfer(port))), 120_000, `${CONNECTIONS} striped transfers`);
          return toMBps(CONNECTIONS * (DOWN + UP), performance.now() - started);
        } finally {
          await stop(cli.process);
        }
      },
      { [STRIPE_PORT]: `127.0.0.1:${server.port}` },
      { paced: true },
    );
  } finally {
    await server.close();
  }
}

const ONE = `${CONNECTIONS} × 2 MiB download, --sessions 1`;
const note = (n: number): string => `paced sandbox (agent-like ~1 MB/s per session); ${CONNECTIONS} connections at once, each 2 MiB down + 64 KiB up, SHA-256 both ways; forward --sessions ${n}`;

export const rows: BenchRow[] = [
  { group: 'striping', name: ONE, unit: 'MB/s', note: note(1), run: () => stripedDownload(1) },
  { group: 'striping', name: `${CONNECTIONS} × 2 MiB download, --sessions 2`, unit: 'MB/s', ceiling: `striping/${ONE}`, note: `${note(2)}; the ratio column is × the 1-session row`, run: () => stripedDownload(2) },
  { group: 'striping', name: `${CONNECTIONS} × 2 MiB download, --sessions 4`, unit: 'MB/s', ceiling: `striping/${ONE}`, note: `${note(4)}; the ratio column is × the 1-session row (target ≥ 3)`, run: () => stripedDownload(4) },
];

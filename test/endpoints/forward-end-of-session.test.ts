import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortForwarder } from '../../src/endpoints/index.js';
import { createSsmApi, type SsmApi } from '../../src/session/index.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { listenTcp, within, type TestServer } from '../helpers/servers.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';

// When the service ends a forward's session (TerminateSession, an expiry), the bytes the forward already
// received and acknowledged are the local app's: they must reach it, followed by a clean end, not a reset.
const MUX_TARGET = 'i-0fwdend000000001';
const BASIC_TARGET = 'i-0fwdend000000002';
const BYTES = 2 * 1024 * 1024;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let burst: TestServer;
let api: SsmApi;
const sent = randomBytes(BYTES);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
// A unix socket locally: its kernel buffers hold ~200 KiB, so most of the burst waits in the forward itself
// (loopback TCP buffers can grow to hold all of it, and then the test could not fail).
const socketDir = mkdtempSync(join(tmpdir(), 'ssm-bridge-fwd-end-'));

beforeAll(async () => {
  // Sends BYTES and stays open: only the session's end closes the connection.
  burst = await listenTcp((socket) => {
    socket.on('error', () => {});
    socket.write(sent);
  });
  env = await startTestSandbox({
    [MUX_TARGET]: { ports: { '80': `127.0.0.1:${burst.port}` } },
    [BASIC_TARGET]: { agentVersion: '3.0.161.0', ports: { '80': `127.0.0.1:${burst.port}` } },
  });
  api = await createSsmApi({ endpointUrl: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
});

afterAll(async () => {
  api?.destroy();
  await env?.close();
  await burst?.close();
  rmSync(socketDir, { recursive: true, force: true });
});

async function waitUntil(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('forward: the service ends the session', () => {
  for (const [mode, target] of [
    ['multiplexed', MUX_TARGET],
    ['basic', BASIC_TARGET],
  ] as const) {
    it(`${mode}: a local app that had not read yet still gets every byte received, then a clean end`, async () => {
      const path = join(socketDir, `${mode}.sock`);
      const forwarder = await PortForwarder.start({ api, target, remotePort: 80, local: { kind: 'unix', path } });
      expect(forwarder.mode).toBe(mode);
      const socket = net.connect({ path });
      await new Promise((r) => socket.once('connect', r));
      socket.pause(); // not reading: what arrives waits in the forward's buffers
      // Basic mode dials on the first data.
      socket.write('go');
      const sessionId = forwarder.sessionId;
      // Wait until the forward has taken in all it will while the app does not read: everything (smux holds
      // up to 4 MiB for a stream), or, in basic mode, which passes the app's backpressure on, what fits.
      let acked = -1;
      let stableSince = Date.now();
      await waitUntil(
        () => {
          const now = env.sandbox.traffic(sessionId)?.payloadBytesAckedByClient ?? 0;
          if (now !== acked) [acked, stableSince] = [now, Date.now()];
          return acked > 0 && (mode === 'multiplexed' ? acked >= BYTES : Date.now() - stableSince > 300);
        },
        20_000,
        'the forward to stop taking in data',
      );

      const chunks: Buffer[] = [];
      let socketError: Error | undefined;
      socket.on('error', (err) => (socketError = err));
      const ended = new Promise<void>((resolve) => {
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.once('end', () => resolve());
        socket.once('close', () => resolve());
      });
      const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${sessionId}/terminate`, { method: 'POST' });
      expect(res.status).toBe(200);
      // Multiplexed, the forward holds everything and sees the end at once. Basic mode has paused the data
      // channel behind the app, so it learns of the end only once the app has read what was ahead of it.
      if (mode === 'basic') socket.resume();
      const err = await within(forwarder.closed(), 15_000, 'the session to close');
      expect(err?.code).toBe('SESSION_TERMINATED');
      socket.resume();
      await within(ended, 15_000, 'the local connection to end');
      expect(socketError).toBeUndefined();
      const received = Buffer.concat(chunks);
      if (mode === 'multiplexed') {
        expect(received.length).toBe(BYTES);
        expect(sha256(received)).toBe(sha256(sent));
      } else {
        // Basic mode carries the bytes without framing: the app gets at least what the forward acknowledged
        // (and what was already on the wire to it when the session ended), in order.
        expect(received.length).toBeGreaterThanOrEqual(acked);
        expect(sha256(received)).toBe(sha256(sent.subarray(0, received.length)));
      }
      socket.destroy();
      await forwarder.close();
    }, 40_000);
  }
});

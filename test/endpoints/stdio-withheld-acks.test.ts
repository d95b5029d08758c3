import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startStdioProxy } from '../../src/endpoints/index.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { createSsmApi } from '../../src/session/index.js';
import { startHostileService, type HostileService } from '../helpers/hostile-service.js';
import { within } from '../helpers/servers.js';

/*
 * proxy at the end of its input while the service withholds every ack: the flush waits flushTimeoutMs at most,
 * then the session is terminated (issue 15). The write barrier behind a full window used to wait for ever.
 */

let service: HostileService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

describe('proxy: the end of input while the service holds its acks', () => {
  it.each([
    ['stream mode', { portNumber: '22' }, undefined],
    ['a port-forwarding document (smux)', { portNumber: '80', type: 'LocalPortForwarding' }, 'AWS-StartPortForwardingSession'],
  ])('%s: 4 MiB queued, then EOF: terminated within the flush bound', async (_name, properties, documentName) => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(properties);
        peer.acks = false;
      },
    });
    const api = await createSsmApi({ endpointUrl: service.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
    try {
      const input = new PassThrough();
      const output = new PassThrough();
      output.resume();
      const proxy = await startStdioProxy({ api, target: 'i-0123456789abcdef0', ...(documentName ? { documentName, parameters: { portNumber: ['80'] } } : {}), input, output, flushTimeoutMs: 1_000 });
      input.end(randomBytes(4 * 1024 * 1024));
      const started = Date.now();
      // Bounded, and honest: bytes the service never acknowledged are not a clean end (exit 11, not 0).
      const err = await within(proxy.done, 10_000, 'the proxy to end');
      expect(err?.code).toBe('DATA_LOST');
      expect(err?.message).toMatch(/did not acknowledge everything sent within 1 s of the end of input/);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
    } finally {
      api.destroy();
    }
  });
});

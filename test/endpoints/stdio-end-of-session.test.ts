import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStdioProxy } from '../../src/endpoints/index.js';
import { createSsmApi, type SsmApi } from '../../src/session/index.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { listenTcp, within, type TestServer } from '../helpers/servers.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';

// When the remote side sends its last bytes and closes, the service ends the session (channel_closed) as
// soon as we have acknowledged them, which is usually before they reached a slow output. They must still
// reach it: the session's end may not discard what was received.
const TARGET = 'i-0stdioend00000001';
const BYTES = 2 * 1024 * 1024;

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let burst: TestServer;
let api: SsmApi;
const sent = randomBytes(BYTES);

beforeAll(async () => {
  // Sends BYTES, then closes: what `ssh` sees when the remote command ends.
  burst = await listenTcp((socket) => {
    socket.on('error', () => {});
    socket.end(sent);
  });
  env = await startTestSandbox({ [TARGET]: { ports: { '22': `127.0.0.1:${burst.port}` } } });
  api = await createSsmApi({ endpointUrl: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
});

afterAll(async () => {
  api?.destroy();
  await env?.close();
  await burst?.close();
});

/** An output that takes 2 ms per 16 KiB write: slower than the data arrives. */
function slowOutput(): { output: Writable; digest(): string; bytes(): number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const output = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      setTimeout(cb, 2);
    },
  });
  return { output, digest: () => hash.digest('hex'), bytes: () => bytes };
}

describe('proxy: the end of a stream session', () => {
  it('delivers every byte received before the service closed the session to a slow output', async () => {
    const sink = slowOutput();
    const input = new PassThrough(); // stays open, as ssh keeps stdin open
    const proxy = await startStdioProxy({ api, target: TARGET, port: 22, input, output: sink.output });
    const err = await within(proxy.done, 30_000, 'the proxy to finish');
    expect(err).toBeUndefined();
    expect(sink.bytes()).toBe(BYTES);
    expect(sink.digest()).toBe(createHash('sha256').update(sent).digest('hex'));
  });
});

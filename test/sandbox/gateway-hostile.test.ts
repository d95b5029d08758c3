import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { SSMClient, StartSessionCommand, TerminateSessionCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { encodeOpenDataChannelInput, PayloadType } from '../../src/protocol/index.js';
import { RawDataChannel } from '../helpers/raw-data-channel.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { echoServer, within, type TestServer } from '../helpers/servers.js';

/*
 * The sandbox survives what an unauthenticated or misbehaving client sends its gateway: each case, then a normal
 * session through the same sandbox. The sandbox runs in this process, so an uncaught exception fails the file.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const TARGET = 'i-0hostile000000001';
let env: Awaited<ReturnType<typeof startTestSandbox>>;
let echo: TestServer;
let ssm: SSMClient;

beforeAll(async () => {
  echo = await echoServer();
  env = await startTestSandbox({ [TARGET]: { ports: { '7': `127.0.0.1:${echo.port}` } } });
  ssm = new SSMClient({ endpoint: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS });
});

afterAll(async () => {
  ssm?.destroy();
  await env?.close();
  await echo?.close();
});

/** Send raw bytes to the sandbox's port; resolve with what came back before it closed (bounded). */
function raw(bytes: string | Buffer): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: env.sandbox.port }, () => socket.write(bytes));
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      socket.on('error', () => resolve(got));
      socket.on('close', () => resolve(got));
      setTimeout(() => socket.destroy(), 2_000).unref();
    }),
    5_000,
    'the sandbox to answer',
  );
}

function upgrade(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`;
}

async function stillServes(): Promise<void> {
  const client = new RawDataChannel({ endpoint: env.sandbox.endpoint, target: TARGET, documentName: 'AWS-StartSSHSession', parameters: { portNumber: ['7'] } });
  await client.open();
  try {
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    await new Promise((r) => setTimeout(r, 50));
    client.send(PayloadType.Output, Buffer.from('still here'));
    await client.until(() => Buffer.concat(client.output).toString() === 'still here', 5_000, 'the echo');
  } finally {
    client.close();
  }
}

async function session(): Promise<{ sessionId: string; streamUrl: string; token: string }> {
  const res = await ssm.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession', Parameters: { portNumber: ['7'] } }));
  return { sessionId: res.SessionId!, streamUrl: res.StreamUrl!, token: res.TokenValue! };
}

describe('the gateway against hostile clients', () => {
  it('a badly escaped session id in the upgrade path: 400, no crash', async () => {
    expect(await raw(upgrade('/v1/data-channel/%ZZ'))).toMatch(/^HTTP\/1\.1 4\d\d/);
    await stillServes();
  });

  it('a malformed absolute URL in the request line: an error status, no crash', async () => {
    const answer = await raw(upgrade('http://[::1/v1/data-channel/x'));
    expect(answer === '' || /^HTTP\/1\.1 4\d\d/.test(answer)).toBe(true);
    await stillServes();
  });

  it('a malformed WebSocket frame before OpenDataChannelInput: the socket closes, no crash', async () => {
    const { streamUrl } = await session();
    const ws = new WebSocket(streamUrl);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    // A frame with reserved bits and an unknown opcode, straight onto the socket.
    (ws as unknown as { _socket: net.Socket })._socket.write(Buffer.from([0xff, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    await within(new Promise((r) => ws.once('close', r)), 5_000, 'the gateway to close the socket');
    await stillServes();
  });

  it('a first frame larger than the cap is refused before authentication', async () => {
    const { streamUrl } = await session();
    const ws = new WebSocket(streamUrl);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
    ws.send('x'.repeat(2 * 1024 * 1024));
    expect(await within(closed, 5_000, 'the close')).toBe(1009);
    await stillServes();
  });

  it('TerminateSession while the agent has writes queued behind a blocked destination: no crash', async () => {
    const { sessionId, streamUrl, token } = await session();
    const ws = new WebSocket(streamUrl);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    ws.send(encodeOpenDataChannelInput({ MessageSchemaVersion: '1.0', RequestId: '00000000-0000-4000-8000-000000000000', TokenValue: token, ClientId: '00000000-0000-4000-8000-000000000001', ClientVersion: '1.2.694.0' }));
    ws.close();
    const client = new RawDataChannel({ endpoint: env.sandbox.endpoint, target: TARGET, documentName: 'AWS-StartSSHSession', parameters: { portNumber: ['7'] } });
    await client.open();
    await client.until(() => client.handshakeCompleteAtMs !== undefined, 5_000, 'HandshakeComplete');
    await new Promise((r) => setTimeout(r, 50));
    env.sandbox.gateway.applySessionFault(client.sessionId, { kind: 'block-destination', ms: 3_000 });
    for (let i = 0; i < 2000; i++) client.send(PayloadType.Output, randomBytes(1024));
    await new Promise((r) => setTimeout(r, 200));
    await ssm.send(new TerminateSessionCommand({ SessionId: client.sessionId }));
    await ssm.send(new TerminateSessionCommand({ SessionId: sessionId }));
    await client.until(() => client.channelClosed !== undefined, 5_000, 'channel_closed');
    client.close();
    await stillServes();
  });
});

describe('the control API against other origins', () => {
  function control(headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: env.sandbox.port, path: '/_sandbox/faults', method: 'POST', headers: { 'content-type': 'text/plain', ...headers } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{"dropRate":0}');
    });
  }

  it('refuses a DNS-rebinding Host and a cross-site Origin; accepts loopback callers', async () => {
    expect(await control({ host: 'evil.example:8080' })).toBe(403);
    expect(await control({ host: `127.0.0.1:${env.sandbox.port}`, origin: 'https://evil.example' })).toBe(403);
    expect(await control({ host: `127.0.0.1:${env.sandbox.port}`, origin: 'null' })).toBe(403);
    expect(await control({ host: `localhost:${env.sandbox.port}` })).toBe(200);
    expect(await control({ host: `127.0.0.1:${env.sandbox.port}`, origin: `http://127.0.0.1:${env.sandbox.port}` })).toBe(200);
  });
});

import net from 'node:net';
import { SSMClient, StartSessionCommand } from '@aws-sdk/client-ssm';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { sdkSignedHeaders, type SignInput } from '../helpers/sigv4.js';

// The data-channel upgrade (service ssmmessages) through the whole sandbox, with a raw `ws` client.
const TARGET = 'i-0sigv400000000001';

let env: Awaited<ReturnType<typeof startTestSandbox>>;
let ssm: SSMClient;

beforeAll(async () => {
  env = await startTestSandbox({ [TARGET]: { ports: { '22': '127.0.0.1:1' } } });
  ssm = new SSMClient({ endpoint: env.sandbox.endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS, maxAttempts: 1 });
});

afterAll(async () => {
  ssm?.destroy();
  await env?.close();
});

async function startSession(): Promise<{ sessionId: string; streamUrl: string }> {
  const out = await ssm.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' }));
  return { sessionId: out.SessionId!, streamUrl: out.StreamUrl! };
}

type Upgrade = { opened: true } | { opened: false; status: number; errorType: string | undefined; body: string };

/** Open a WebSocket with these headers: whether the upgrade succeeded, or the status and body it was refused with. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: 5_000 });
    ws.on('open', () => {
      ws.terminate();
      resolve({ opened: true });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ opened: false, status: res.statusCode ?? 0, errorType: res.headers['x-amzn-errortype'] as string | undefined, body }));
      res.on('error', reject);
    });
    ws.on('error', reject);
  });
}

const signUpgrade = (url: string, extra: Partial<SignInput> = {}) => sdkSignedHeaders({ method: 'GET', url, service: 'ssmmessages', ...extra });

async function signedUpgrades(sessionId: string): Promise<number> {
  const res = await fetch(`${env.sandbox.endpoint}/_sandbox/sessions/${sessionId}`, { signal: AbortSignal.timeout(5_000) });
  return ((await res.json()) as { counters: { signedUpgrades: number } }).counters.signedUpgrades;
}

/** Raw bytes to the sandbox port; resolves with what it answered before closing (bounded). */
function rawExchange(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(env.sandbox.port, '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(answer);
    }, 3_000);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      // An upgraded socket stays open: the 101 line is answer enough.
      if (answer.startsWith('HTTP/1.1 101')) socket.destroy();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.on('error', reject);
  });
}

describe('data-channel upgrade signatures', () => {
  it('accepts an unsigned upgrade (older clients) and a correctly signed one, and counts only the signed', async () => {
    const { sessionId, streamUrl } = await startSession();
    expect(await upgrade(streamUrl)).toEqual({ opened: true });
    expect(await signedUpgrades(sessionId)).toBe(0);
    expect(await upgrade(streamUrl, await signUpgrade(streamUrl))).toEqual({ opened: true });
    expect(await upgrade(streamUrl, await signUpgrade(streamUrl, { credentials: { ...SANDBOX_CREDENTIALS, sessionToken: 'tok' } }))).toEqual({ opened: true });
    expect(await signedUpgrades(sessionId)).toBe(2);
  });

  it('refuses a badly signed upgrade at the HTTP upgrade, with the status and the AWS JSON error', async () => {
    const { sessionId, streamUrl } = await startSession();
    const cases: Array<[Partial<SignInput>, number, string, RegExp]> = [
      [{ credentials: { accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'sandbox-secret' } }, 403, 'InvalidSignatureException', /^The request signature we calculated does not match/],
      [{ credentials: { accessKeyId: 'AKIDNOBODY', secretAccessKey: 'x' } }, 403, 'UnrecognizedClientException', /^The security token included in the request is invalid\.$/],
      [{ service: 'ssm' }, 403, 'InvalidSignatureException', /^Credential should be scoped to correct service: 'ssmmessages'\.$/],
      [{ region: 'eu-west-1' }, 403, 'InvalidSignatureException', /^Credential should be scoped to a valid region\.$/],
      [{ signingDate: new Date(Date.now() - 6 * 60_000) }, 400, 'InvalidSignatureException', /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/],
      [{ url: streamUrl.replace('role=publish_subscribe', 'role=subscribe') }, 403, 'InvalidSignatureException', /^The request signature we calculated does not match/],
    ];
    for (const [change, status, type, message] of cases) {
      const result = await upgrade(streamUrl, await signUpgrade(streamUrl, change));
      expect(result.opened, JSON.stringify(change)).toBe(false);
      if (result.opened) continue;
      expect([result.status, result.errorType], JSON.stringify(change)).toEqual([status, type]);
      const body = JSON.parse(result.body) as { __type: string; message: string };
      expect(body.__type).toBe(type);
      expect(body.message).toMatch(message);
    }
    const malformed = await upgrade(streamUrl, { authorization: 'AWS4-HMAC-SHA256 Signature=00' });
    expect(malformed).toMatchObject({ opened: false, status: 400, errorType: 'IncompleteSignatureException' });
    expect(await signedUpgrades(sessionId)).toBe(0);
    expect(env.sandbox.registry.get(sessionId)?.counters.connections).toBe(0);
  });

  it('answers weird upgrade requests with an error status and keeps serving', async () => {
    const { streamUrl } = await startSession();
    const host = `127.0.0.1:${env.sandbox.port}`;
    const ws = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const auth = 'Authorization: AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/20240101/us-east-1/ssmmessages/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nX-Amz-Date: 20240101T000000Z\r\n';
    const cases: Array<[string, RegExp]> = [
      [`GET /v1/data-channel/%ZZ HTTP/1.1\r\nHost: ${host}\r\n${ws}\r\n`, /^HTTP\/1\.1 400 /],
      [`GET /v1/data-channel/%ZZ HTTP/1.1\r\nHost: ${host}\r\n${ws}${auth}\r\n`, /^HTTP\/1\.1 400 /],
      [`GET http://${host}/v1/data-channel/x HTTP/1.1\r\nHost: ${host}\r\n${ws}${auth}\r\n`, /^HTTP\/1\.1 400 .*InvalidSignatureException/s],
      [`GET /v1/data-channel/x HTTP/1.1\r\n${ws}${auth}\r\n`, /^HTTP\/1\.1 400 /],
      [`GET /v1/data-channel/unknown HTTP/1.1\r\nHost: ${host}\r\n${ws}\r\n`, /^HTTP\/1\.1 404 /],
      [`GET /elsewhere HTTP/1.1\r\nHost: ${host}\r\n${ws}\r\n`, /^HTTP\/1\.1 404 /],
      [`GET /v1/data-channel/x HTTP/1.1\r\nHost: ${host}\r\n${ws}Authorization: \r\n\r\n`, /^HTTP\/1\.1 400 .*MissingAuthenticationTokenException/s],
    ];
    for (const [request, answer] of cases) expect(await rawExchange(request), request).toMatch(answer);
    // Still up, and still verifying.
    expect(await upgrade(streamUrl, await signUpgrade(streamUrl))).toEqual({ opened: true });
  });
});

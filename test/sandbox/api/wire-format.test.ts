import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_REQUEST_BODY_BYTES } from '../../../src/sandbox/api/index.js';
import { rawRequest, ssmHeaders, startSandboxApiServer, type SandboxApiServer } from '../../helpers/sandbox-api-server.js';
import { sdkSignedHeaders } from '../../helpers/sigv4.js';

const TARGET = 'i-0123456789abcdef0';
const START = JSON.stringify({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' });

let api: SandboxApiServer;

beforeEach(async () => {
  api = await startSandboxApiServer({ targets: { [TARGET]: {} } });
});

afterEach(async () => {
  await api?.close();
});

describe('AWS JSON 1.1 on the wire', () => {
  it('requires a SigV4 Authorization header', async () => {
    const { authorization: _auth, ...unsigned } = await ssmHeaders(api.port, 'StartSession', START);
    const res = await fetch(api.endpoint, { method: 'POST', headers: unsigned, body: START, signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await res.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });

    const basic = await rawRequest(api.port, { headers: { ...unsigned, authorization: 'Basic dXNlcjpwYXNz' }, body: START });
    expect(basic.status).toBe(400);
    expect((basic.json() as { __type: string }).__type).toBe('IncompleteSignatureException');

    const noCredential = await rawRequest(api.port, { headers: { ...unsigned, authorization: 'AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00' }, body: START });
    expect(noCredential.status).toBe(400);
    expect((noCredential.json() as { __type: string }).__type).toBe('IncompleteSignatureException');

    // Well-formed but not a signature of this request: refused (test/sandbox/api/sigv4.test.ts has the rest).
    const forged = await rawRequest(api.port, {
      headers: { ...unsigned, authorization: 'AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00' },
      body: START,
    });
    expect(forged.status).toBe(403);
    expect((forged.json() as { __type: string }).__type).toBe('InvalidSignatureException');

    const signed = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', START), body: START });
    expect(signed.status).toBe(200);
  });

  it('answers success with the AWS JSON content type and a request id', async () => {
    const res = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', START), body: START });
    expect(res.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(res.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.keys(res.json() as object).sort()).toEqual(['SessionId', 'StreamUrl', 'TokenValue']);
  });

  it('builds StreamUrl from the Host header, and from the local address when Host is unusable', async () => {
    const viaName = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', START, { host: `localhost:${api.port}` }), body: START });
    const a = viaName.json() as { SessionId: string; StreamUrl: string };
    expect(a.StreamUrl).toBe(`ws://localhost:${api.port}/v1/data-channel/${a.SessionId}?role=publish_subscribe`);
    const bogus = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', START, { host: 'evil.example/x?y=' }), body: START });
    const b = bogus.json() as { SessionId: string; StreamUrl: string };
    expect(b.StreamUrl).toBe(`ws://127.0.0.1:${api.port}/v1/data-channel/${b.SessionId}?role=publish_subscribe`);
  });

  it('answers UnknownOperationException for actions it does not emulate and for other routes', async () => {
    const noTarget = await sdkSignedHeaders({ url: `${api.endpoint}/`, body: '{}' });
    for (const headers of [await ssmHeaders(api.port, 'DescribeSessions', '{}'), await ssmHeaders(api.port, 'StartSession', '{}', { 'x-amz-target': 'AmazonEC2.StartSession' }), noTarget]) {
      const res = await rawRequest(api.port, { headers, body: '{}' });
      expect(res.status).toBe(400);
      expect(res.headers['x-amzn-errortype']).toBe('UnknownOperationException');
      expect((res.json() as { __type: string }).__type).toBe('UnknownOperationException');
    }
    const get = await rawRequest(api.port, { method: 'GET', headers: await ssmHeaders(api.port, 'StartSession', '') });
    expect(get.status).toBe(404);
    const elsewhere = await rawRequest(api.port, { path: '/v1/data-channel/x', headers: await ssmHeaders(api.port, 'StartSession', START), body: START });
    expect(elsewhere.status).toBe(404);
  });

  it('answers SerializationException for a body that is not JSON or has wrong member types', async () => {
    for (const body of ['{"Target":', '[1,2]', JSON.stringify({ Target: 42 }), JSON.stringify({ Target: TARGET, Parameters: { portNumber: '22' } })]) {
      const res = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', body), body });
      expect(res.status, body).toBe(400);
      expect((res.json() as { __type: string }).__type, body).toBe('SerializationException');
    }
    // An empty body is `{}`: a missing Target.
    const empty = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', ''), body: '' });
    expect(empty.json()).toEqual({ __type: 'ValidationException', message: "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null" });
  });

  it('refuses bodies over the size limit with 413', async () => {
    const body = JSON.stringify({ Target: TARGET, Reason: 'x'.repeat(MAX_REQUEST_BODY_BYTES) });
    const res = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', body), body });
    expect(res.status).toBe(413);
    expect((res.json() as { __type: string }).__type).toBe('RequestEntityTooLargeException');
  });

  it('ignores members it does not know, as the service does', async () => {
    const body = JSON.stringify({ Target: TARGET, DocumentName: 'AWS-StartSSHSession', Extra: 1 });
    const res = await rawRequest(api.port, { headers: await ssmHeaders(api.port, 'StartSession', body), body });
    expect(res.status).toBe(200);
  });
});

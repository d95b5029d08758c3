import { describe, expect, it } from 'vitest';
import { SsmApiError } from '../../../src/sandbox/api/ssm-api-error.js';
import { canonicalQuery, canonicalUri, collectHeaders, formatAmzDate, parseAmzDate, verifySigV4, type SignedRequest, type SigV4VerifyOptions } from '../../../src/sandbox/api/sigv4-verifier.js';
import { SANDBOX_CREDENTIALS } from '../../../src/sandbox/credentials.js';
import { sdkSignedHeaders, type SignInput } from '../../helpers/sigv4.js';

const NOW_MS = Date.UTC(2024, 0, 2, 3, 4, 5); // 20240102T030405Z
const BODY = JSON.stringify({ Target: 'i-0123456789abcdef0', DocumentName: 'AWS-StartSSHSession' });
const STORE = new Map([
  [SANDBOX_CREDENTIALS.accessKeyId, SANDBOX_CREDENTIALS.secretAccessKey],
  ['AKIDEXTRA0000001', 'extra/secret+1'],
]);
const SSM: SigV4VerifyOptions = { service: 'ssm', region: 'us-east-1', credentials: STORE, now: () => NOW_MS };

/** A request as Node would hand it to the sandbox, signed by the SDK's signer. */
async function signed(input: Partial<SignInput> & { url?: string } = {}): Promise<SignedRequest> {
  const url = input.url ?? 'http://127.0.0.1:4000/';
  const body = input.body ?? (input.method === 'GET' ? undefined : BODY);
  const headers = await sdkSignedHeaders({
    url,
    headers: input.method === 'GET' ? {} : { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.StartSession' },
    signingDate: new Date(NOW_MS),
    ...input,
    ...(body !== undefined ? { body } : {}),
  });
  const parsed = new URL(url);
  return {
    method: input.method ?? 'POST',
    url: `${parsed.pathname}${parsed.search}`,
    rawHeaders: Object.entries(headers).flat(),
    body: Buffer.from(body ?? ''),
  };
}

function failure(request: SignedRequest, options: SigV4VerifyOptions = SSM): SsmApiError {
  try {
    verifySigV4(request, options);
  } catch (err) {
    expect(err).toBeInstanceOf(SsmApiError);
    return err as SsmApiError;
  }
  throw new Error('expected the signature to be refused');
}

function withHeader(request: SignedRequest, name: string, value: string): SignedRequest {
  const raw = [...request.rawHeaders];
  const i = raw.findIndex((h, k) => k % 2 === 0 && h.toLowerCase() === name);
  if (i === -1) raw.push(name, value);
  else raw[i + 1] = value;
  return { ...request, rawHeaders: raw };
}

function headerOf(request: SignedRequest, name: string): string {
  return collectHeaders(request.rawHeaders).get(name)!;
}

const MISMATCH = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

describe('SigV4 verifier', () => {
  it('verifies what the SDK signs: the API POST, the data-channel GET with its query, a session token, a content hash', async () => {
    expect(verifySigV4(await signed(), SSM)).toBe('AKIDSANDBOX');
    const upgrade = await signed({ method: 'GET', url: 'ws://127.0.0.1:4000/v1/data-channel/sandbox-0123456789abcdef0?role=publish_subscribe', service: 'ssmmessages' });
    expect(verifySigV4(upgrade, { ...SSM, service: 'ssmmessages' })).toBe('AKIDSANDBOX');
    const withToken = await signed({ credentials: { ...SANDBOX_CREDENTIALS, sessionToken: 'FwoGZXIvYXdzE//token==' } });
    expect(headerOf(withToken, 'x-amz-security-token')).toBe('FwoGZXIvYXdzE//token==');
    expect(verifySigV4(withToken, SSM)).toBe('AKIDSANDBOX');
    const hashed = await signed({ applyChecksum: true });
    expect(headerOf(hashed, 'x-amz-content-sha256')).toMatch(/^[0-9a-f]{64}$/);
    expect(verifySigV4(hashed, SSM)).toBe('AKIDSANDBOX');
    expect(verifySigV4(await signed({ credentials: { accessKeyId: 'AKIDEXTRA0000001', secretAccessKey: 'extra/secret+1' } }), SSM)).toBe('AKIDEXTRA0000001');
    // Query parameters in another order, repeated ones, reserved characters and a path that needs encoding.
    const odd = await signed({ method: 'GET', url: 'http://127.0.0.1:4000/a%20b/c~d/?z=1&a=%2F%20x&a=0&role=publish_subscribe', service: 'ssmmessages' });
    expect(verifySigV4(odd, { ...SSM, service: 'ssmmessages' })).toBe('AKIDSANDBOX');
    expect(verifySigV4({ ...odd, url: '/a%20b/c~d/?role=publish_subscribe&a=0&a=%2F%20x&z=1' }, { ...SSM, service: 'ssmmessages' })).toBe('AKIDSANDBOX');
  });

  it('matches the AWS documentation example (IAM ListUsers), independently of the SDK', () => {
    const request: SignedRequest = {
      method: 'GET',
      url: '/?Action=ListUsers&Version=2010-05-08',
      rawHeaders: [
        'Content-Type', 'application/x-www-form-urlencoded; charset=utf-8',
        'Host', 'iam.amazonaws.com',
        'X-Amz-Date', '20150830T123600Z',
        'Authorization', 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
      ],
      body: Buffer.alloc(0),
    };
    const options = { service: 'iam', region: 'us-east-1', credentials: new Map([['AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY']]), now: () => Date.UTC(2015, 7, 30, 12, 36) };
    expect(verifySigV4(request, options)).toBe('AKIDEXAMPLE');
    expect(failure(withHeader(request, 'host', 'iam.amazonaws.com.'), options).message).toBe(MISMATCH);
  });

  it('refuses a request changed after signing: one body byte, a signed header, the query, the path, the method', async () => {
    const request = await signed();
    const body = Buffer.from(request.body);
    body[10] ^= 1;
    for (const changed of [
      { ...request, body },
      withHeader(request, 'x-amz-target', 'AmazonSSM.TerminateSession'),
      { ...request, url: '/?x=1' },
      { ...request, url: '/v1' },
      { ...request, method: 'PUT' },
    ]) {
      const err = failure(changed);
      expect([err.type, err.status, err.message]).toEqual(['InvalidSignatureException', 403, MISMATCH]);
    }
    // With x-amz-content-sha256 signed, a changed body no longer matches the hash that was signed.
    const hashed = await signed({ applyChecksum: true });
    expect(failure({ ...hashed, body }).message).toBe("The provided 'x-amz-content-sha256' header does not match what was computed.");
    // Header names in any case, values with runs of spaces: canonicalized as botocore and the SDK do.
    const spaced = withHeader(request, 'x-amz-target', '  AmazonSSM.StartSession  ');
    expect(verifySigV4({ ...spaced, rawHeaders: spaced.rawHeaders.map((h, i) => (i % 2 === 0 ? h.toUpperCase() : h)) }, SSM)).toBe('AKIDSANDBOX');
    const runs = await signed({ headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.StartSession', 'x-amz-user-agent': 'aws-cli/1.45   botocore/1.43 \t x' } });
    expect(headerOf(runs, 'x-amz-user-agent')).toBe('aws-cli/1.45 botocore/1.43 x');
    expect(runs.rawHeaders).toContain('aws-cli/1.45   botocore/1.43 \t x');
    expect(verifySigV4(runs, SSM)).toBe('AKIDSANDBOX');
    const err = failure(withHeader(request, 'content-type', 'application/x-amz-json-1.1  extra'));
    expect(err.message).toBe(MISMATCH);
  });

  it('refuses another secret, an unknown key, the wrong region, service or scope date', async () => {
    const wrongSecret = failure(await signed({ credentials: { accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'sandbox-secret' } }));
    expect([wrongSecret.type, wrongSecret.status, wrongSecret.message]).toEqual(['InvalidSignatureException', 403, MISMATCH]);
    const unknown = failure(await signed({ credentials: { accessKeyId: 'AKIDNOBODY', secretAccessKey: 'sandbox' } }));
    expect([unknown.type, unknown.status, unknown.message]).toEqual(['UnrecognizedClientException', 403, 'The security token included in the request is invalid.']);
    const region = failure(await signed({ region: 'eu-west-1' }));
    expect([region.type, region.status, region.message]).toEqual(['InvalidSignatureException', 403, 'Credential should be scoped to a valid region.']);
    const service = failure(await signed({ service: 'ssmmessages' }));
    expect([service.type, service.status, service.message]).toEqual(['InvalidSignatureException', 403, "Credential should be scoped to correct service: 'ssm'."]);
    const upgradeService = failure(await signed({ method: 'GET', url: 'ws://127.0.0.1:4000/v1/data-channel/s?role=publish_subscribe' }), { ...SSM, service: 'ssmmessages' });
    expect(upgradeService.message).toBe("Credential should be scoped to correct service: 'ssmmessages'.");
    // The scope's date must be X-Amz-Date's.
    const request = await signed();
    const auth = headerOf(request, 'authorization').replace('/20240102/', '/20240101/');
    const scopeDate = failure(withHeader(request, 'authorization', auth));
    expect([scopeDate.type, scopeDate.status]).toEqual(['InvalidSignatureException', 403]);
    expect(scopeDate.message).toMatch(/^Date in Credential scope does not match/);
  });

  it('refuses an X-Amz-Date more than 5 minutes from now, either way, with the service wording', async () => {
    const stale = failure(await signed({ signingDate: new Date(NOW_MS - 6 * 60_000) }));
    expect([stale.type, stale.status, stale.message]).toEqual([
      'InvalidSignatureException',
      400,
      'Signature expired: 20240102T025805Z is now earlier than 20240102T025905Z (20240102T030405Z - 5 min.)',
    ]);
    const future = failure(await signed({ signingDate: new Date(NOW_MS + 6 * 60_000) }));
    expect([future.type, future.status, future.message]).toEqual([
      'InvalidSignatureException',
      400,
      'Signature not yet current: 20240102T031005Z is still later than 20240102T030905Z (20240102T030405Z + 5 min.)',
    ]);
    expect(verifySigV4(await signed({ signingDate: new Date(NOW_MS - 4 * 60_000) }), SSM)).toBe('AKIDSANDBOX');
    expect(verifySigV4(await signed({ signingDate: new Date(NOW_MS + 4 * 60_000) }), SSM)).toBe('AKIDSANDBOX');
  });

  it('answers malformed Authorization and dates with Missing/IncompleteSignature, and weird targets with a mismatch, never a crash', async () => {
    const request = await signed();
    const noAuth = { ...request, rawHeaders: request.rawHeaders.filter((_, i, all) => (i % 2 === 0 ? all[i] : all[i - 1])!.toLowerCase() !== 'authorization') };
    expect(failure(noAuth).type).toBe('MissingAuthenticationTokenException');
    for (const auth of ['', '   ', 'Basic dXNlcjpwYXNz', 'AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/20240102/us-east-1/ssm/aws4_request', 'AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/20240102/us-east-1, SignedHeaders=host, Signature=00', 'AWS4-HMAC-SHA256 Credential=AKIDSANDBOX//us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=00']) {
      const err = failure(withHeader(request, 'authorization', auth));
      expect(err.status, auth).toBe(400);
      expect(err.type, auth).toBe(auth.trim() === '' ? 'MissingAuthenticationTokenException' : 'IncompleteSignatureException');
    }
    for (const date of ['2024-01-02T03:04:05Z', '20240231T000000Z', '20240102T250000Z', '']) {
      expect(failure(withHeader(request, 'x-amz-date', date)).type, date).toBe('IncompleteSignatureException');
    }
    const noHost = headerOf(request, 'authorization').replace(/SignedHeaders=[^,]+/, 'SignedHeaders=x-amz-date');
    expect(failure(withHeader(request, 'authorization', noHost)).message).toBe("'Host' must be a 'SignedHeader' in the AWS Authorization.");
    for (const url of ['http://127.0.0.1:4000/', '*', '/?a=%ZZ', '/?%E0%A4%A=1', '']) expect(failure({ ...request, url }).message, url).toBe(MISMATCH);
    for (const signature of ['00', 'Z'.repeat(64), headerOf(request, 'authorization').slice(-64).toUpperCase()]) {
      const auth = headerOf(request, 'authorization').replace(/Signature=.*$/, `Signature=${signature}`);
      expect(failure(withHeader(request, 'authorization', auth)).message).toBe(MISMATCH);
    }
    // A path the gateway cannot decode is still canonicalized (encoded once more) and verifies when signed so.
    const badPath = await signed({ method: 'GET', url: 'ws://127.0.0.1:4000/v1/data-channel/%ZZ', service: 'ssmmessages' });
    expect(badPath.url).toBe('/v1/data-channel/%ZZ');
    expect(verifySigV4(badPath, { ...SSM, service: 'ssmmessages' })).toBe('AKIDSANDBOX');
  });

  it('canonicalizes URIs, queries, headers and dates as SigV4 specifies', () => {
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('/a/./b/../c//d/')).toBe('/a/c/d/');
    expect(canonicalUri('/a%20b/~x')).toBe('/a%2520b/~x');
    expect(canonicalQuery('')).toBe('');
    expect(canonicalQuery('b=2&a=2&a=1&c&d=x%2Fy+z')).toBe('a=1&a=2&b=2&c=&d=x%2Fy%2Bz');
    expect(canonicalQuery('a=%ZZ')).toBeUndefined();
    expect(collectHeaders(['X-A', '  one   two ', 'x-a', 'three', 'B', 'a\tb'])).toEqual(new Map([['x-a', 'one two,three'], ['b', 'a b']]));
    expect(parseAmzDate('20240102T030405Z')).toBe(NOW_MS);
    expect(formatAmzDate(NOW_MS)).toBe('20240102T030405Z');
  });
});

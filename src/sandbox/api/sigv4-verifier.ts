import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SsmApiError } from './ssm-api-error.js';

/*
 * AWS Signature Version 4 verification, written from the published algorithm with node:crypto, not with the
 * SDK's signer: a verifier that shared the client's signer could not catch the client's signing bugs.
 *
 *   canonical request = method \n canonical URI \n canonical query \n canonical headers \n\n signed headers \n payload hash
 *   string to sign    = AWS4-HMAC-SHA256 \n X-Amz-Date \n <date>/<region>/<service>/aws4_request \n hex(sha256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign)), compared in constant time
 *
 * Pure but for the clock (an option): no I/O. Every failure is an SsmApiError shaped as the service answers.
 */

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
/** How far X-Amz-Date may be from the sandbox's clock, either way (the services allow 5 minutes). */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
const TERMINATOR = 'aws4_request';
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/** A request as it arrived: method, the raw request target, Node's `rawHeaders` (name, value, …) and the body bytes. */
export interface SignedRequest {
  method: string;
  /** The request target as sent (`/path?query`), not decoded. */
  url: string;
  rawHeaders: readonly string[];
  /** The body; an empty buffer for a GET. */
  body: Uint8Array;
}

export interface SigV4VerifyOptions {
  /** `ssm` for the API, `ssmmessages` for the data channel. */
  service: string;
  /** The only region a credential may be scoped to. */
  region: string;
  /** Access key id → secret access key. */
  credentials: ReadonlyMap<string, string>;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

/** The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header. */
export interface ParsedAuthorization {
  accessKeyId: string;
  scopeDate: string;
  scopeRegion: string;
  scopeService: string;
  scopeTerminator: string;
  signedHeaders: string[];
  signature: string;
}

export function missingAuthenticationToken(): SsmApiError {
  return new SsmApiError('MissingAuthenticationTokenException', 400, 'Missing Authentication Token');
}

function incompleteSignature(message: string): SsmApiError {
  return new SsmApiError('IncompleteSignatureException', 400, message);
}

function invalidSignature(message: string, status = 403): SsmApiError {
  return new SsmApiError('InvalidSignatureException', status, message);
}

export function signatureMismatch(): SsmApiError {
  return invalidSignature(
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
  );
}

export function unrecognizedClient(): SsmApiError {
  return new SsmApiError('UnrecognizedClientException', 403, 'The security token included in the request is invalid.');
}

/**
 * Split an Authorization header into its parts. Throws 400 MissingAuthenticationTokenException when it is
 * absent or blank, 400 IncompleteSignatureException when it is not a complete SigV4 header.
 */
export function parseAuthorizationHeader(header: string | undefined): ParsedAuthorization {
  if (header === undefined || header.trim() === '') throw missingAuthenticationToken();
  const shape = 'The Authorization header must be an AWS Signature Version 4 header: "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, SignedHeaders=…, Signature=…".';
  const text = header.trim();
  if (!text.startsWith(`${SIGV4_ALGORITHM} `)) throw incompleteSignature(shape);
  const fields = new Map<string, string>();
  for (const part of text.slice(SIGV4_ALGORITHM.length + 1).split(',')) {
    const item = part.trim();
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    fields.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((name) => !fields.get(name));
  if (missing.length > 0) throw incompleteSignature(`Authorization header requires ${missing.map((m) => `'${m}'`).join(', ')} parameter${missing.length > 1 ? 's' : ''}. ${shape}`);
  const credential = fields.get('Credential')!.split('/');
  if (credential.length !== 5 || credential.some((p) => p === '')) {
    throw incompleteSignature(`Credential must have the form <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request (5 parts separated by "/"), got ${credential.length} part${credential.length === 1 ? '' : 's'}.`);
  }
  const [accessKeyId, scopeDate, scopeRegion, scopeService, scopeTerminator] = credential as [string, string, string, string, string];
  return {
    accessKeyId,
    scopeDate,
    scopeRegion,
    scopeService,
    scopeTerminator,
    signedHeaders: fields.get('SignedHeaders')!.split(';'),
    signature: fields.get('Signature')!,
  };
}

/**
 * Verify a request's SigV4 signature. Returns the access key id it was signed with; throws SsmApiError:
 * 400 MissingAuthenticationTokenException / IncompleteSignatureException (no or malformed header, no X-Amz-Date),
 * 403 UnrecognizedClientException (unknown access key id), 400 InvalidSignatureException (X-Amz-Date more than
 * 5 minutes off), 403 InvalidSignatureException (scope date, region, service or terminator wrong, or the
 * signature does not match).
 */
export function verifySigV4(request: SignedRequest, options: SigV4VerifyOptions): string {
  const headers = collectHeaders(request.rawHeaders);
  const auth = parseAuthorizationHeader(headers.get('authorization'));
  const amzDate = headers.get('x-amz-date');
  if (amzDate === undefined) throw incompleteSignature("Authorization header requires existence of an 'X-Amz-Date' header (the sandbox does not read 'Date').");
  const signedAtMs = parseAmzDate(amzDate);
  if (signedAtMs === undefined) throw incompleteSignature(`X-Amz-Date must be an ISO-8601 basic format date such as 20240101T000000Z, got '${amzDate.slice(0, 40)}'.`);
  const secret = options.credentials.get(auth.accessKeyId);
  if (secret === undefined) throw unrecognizedClient();

  const nowMs = (options.now ?? Date.now)();
  if (signedAtMs < nowMs - MAX_CLOCK_SKEW_MS) {
    throw invalidSignature(`Signature expired: ${amzDate} is now earlier than ${formatAmzDate(nowMs - MAX_CLOCK_SKEW_MS)} (${formatAmzDate(nowMs)} - 5 min.)`, 400);
  }
  if (signedAtMs > nowMs + MAX_CLOCK_SKEW_MS) {
    throw invalidSignature(`Signature not yet current: ${amzDate} is still later than ${formatAmzDate(nowMs + MAX_CLOCK_SKEW_MS)} (${formatAmzDate(nowMs)} + 5 min.)`, 400);
  }
  if (auth.scopeDate !== amzDate.slice(0, 8)) {
    throw invalidSignature(`Date in Credential scope does not match YYYYMMDD from X-Amz-Date: '${auth.scopeDate.slice(0, 20)}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`);
  }
  if (auth.scopeRegion !== options.region) throw invalidSignature('Credential should be scoped to a valid region.');
  if (auth.scopeService !== options.service) throw invalidSignature(`Credential should be scoped to correct service: '${options.service}'.`);
  if (auth.scopeTerminator !== TERMINATOR) throw invalidSignature(`Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${auth.scopeTerminator.slice(0, 40)}'.`);
  if (!auth.signedHeaders.includes('host')) throw invalidSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.");

  const payloadHash = headers.get('x-amz-content-sha256');
  const bodyHash = sha256Hex(request.body);
  // The header is what was signed; a hash in it that is not the body's means the body was changed on the way.
  if (payloadHash !== undefined && HEX_SHA256.test(payloadHash) && payloadHash.toLowerCase() !== bodyHash) {
    throw invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const canonical = canonicalRequest(request, headers, auth.signedHeaders, payloadHash ?? bodyHash);
  if (canonical === undefined) throw signatureMismatch();
  const scope = `${auth.scopeDate}/${auth.scopeRegion}/${auth.scopeService}/${TERMINATOR}`;
  const stringToSign = `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
  const expected = hmac(signingKey(secret, auth.scopeDate, auth.scopeRegion, auth.scopeService), stringToSign);
  if (!HEX_SIGNATURE.test(auth.signature) || !timingSafeEqual(expected, Buffer.from(auth.signature, 'hex'))) throw signatureMismatch();
  return auth.accessKeyId;
}

/**
 * The canonical request; undefined when the request target cannot be canonicalized (not origin-form, bad
 * percent-encoding in the query), which can only be a signature mismatch.
 */
export function canonicalRequest(request: Pick<SignedRequest, 'method' | 'url'>, headers: ReadonlyMap<string, string>, signedHeaders: readonly string[], payloadHash: string): string | undefined {
  if (!request.url.startsWith('/')) return undefined;
  const q = request.url.indexOf('?');
  const path = q === -1 ? request.url : request.url.slice(0, q);
  const query = canonicalQuery(q === -1 ? '' : request.url.slice(q + 1));
  if (query === undefined) return undefined;
  const headerLines = signedHeaders.map((name) => `${name}:${headers.get(name) ?? ''}\n`).join('');
  return `${request.method}\n${canonicalUri(path)}\n${query}\n${headerLines}\n${signedHeaders.join(';')}\n${payloadHash}`;
}

/**
 * The path with dot segments and empty segments removed, each character outside RFC 3986's unreserved set
 * percent-encoded again (SigV4 encodes the already-encoded path once more for every service but S3). "/" stays "/".
 */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return `/${segments.map(uriEncode).join('/')}${trailing}`;
}

/** Query parameters decoded, encoded canonically, sorted by name then value; undefined on bad percent-encoding. */
export function canonicalQuery(rawQuery: string): string | undefined {
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeComponent(eq === -1 ? part : part.slice(0, eq));
    const value = decodeComponent(eq === -1 ? '' : part.slice(eq + 1));
    if (name === undefined || value === undefined) return undefined;
    pairs.push([uriEncode(name), uriEncode(value)]);
  }
  pairs.sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/**
 * Header name (lower case) → canonical value: each value trimmed with runs of spaces and tabs collapsed to
 * one space, repeated headers joined with "," in the order they came (as botocore and the JS SDK sign them).
 */
export function collectHeaders(rawHeaders: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim();
    const previous = out.get(name);
    out.set(name, previous === undefined ? value : `${previous},${value}`);
  }
  return out;
}

/** X-Amz-Date (`20240101T000000Z`) as epoch ms; undefined when it is not a real date in that form. */
export function parseAmzDate(text: string): number | undefined {
  const m = AMZ_DATE.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Date.UTC rolls 20240231 over to March: such a date is not one.
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && h < 24 && mi < 60 && s < 60 ? ms : undefined;
}

export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function decodeComponent(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** RFC 3986 encoding: everything but A–Z a–z 0–9 - . _ ~ as %XX of its UTF-8 bytes (upper-case hex). */
function uriEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), TERMINATOR);
}

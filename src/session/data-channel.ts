import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { WebSocketTransport, type WebSocketTransportOptions } from '../channel/index.js';
import { BridgeError, ErrorCode } from '../errors.js';
import { CLIENT_VERSION, encodeOpenDataChannelInput } from '../protocol/index.js';
import { mapAwsError, preloadAwsSdk, type UpgradeSigning } from './ssm-api.js';

export interface ConnectDataChannelOptions extends WebSocketTransportOptions {
  clientId: string;
  clientVersion?: string;
  /** Bounds the signing and the WebSocket handshake, each. Default 10 s. */
  connectTimeoutMs?: number;
  /** Sign the upgrade (SigV4, service `ssmmessages`) with credentials resolved now; absent: unsigned. */
  signing?: UpgradeSigning;
  /** The SSM endpoint the session came from (--endpoint-url): a plain ws: StreamUrl is allowed only on its loopback host. */
  endpointUrl?: string;
}

const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * The StreamUrl comes from the service, and the session token goes to it: only `wss:` to anywhere, or plain
 * `ws:` to exactly the loopback host of the endpoint we called (the sandbox). Anything else (another host in
 * clear, `http:`, `ws+unix:` to a local socket of the server's choosing) is a protocol error, raised before any
 * connection; the message names the scheme and host only, never the query (it may carry secrets).
 */
export function checkStreamUrl(streamUrl: string, endpointUrl: string | undefined): void {
  let url: URL;
  try {
    url = new URL(streamUrl);
  } catch {
    throw new BridgeError(ErrorCode.PROTOCOL_ERROR, 'the service returned a StreamUrl that is not a URL; refusing to connect');
  }
  if (url.protocol === 'wss:') return;
  if (url.protocol === 'ws:' && endpointUrl !== undefined) {
    let endpointHost = '';
    try {
      endpointHost = new URL(endpointUrl).hostname;
    } catch {
      // an endpoint that is not a URL allows nothing
    }
    if (endpointHost !== '' && LOOPBACK_HOSTS.test(endpointHost) && url.hostname === endpointHost) return;
  }
  const where = `${url.protocol}//${url.host}`;
  throw new BridgeError(
    ErrorCode.PROTOCOL_ERROR,
    `the service returned a StreamUrl (${where}) that is neither wss: nor the loopback host of --endpoint-url; refusing to send the session token there`,
  );
}

/** The SigV4 service name of the data channel (the message gateway, ssmmessages.<region>.amazonaws.com). */
export const DATA_CHANNEL_SIGNING_SERVICE = 'ssmmessages';

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/**
 * The client WebSocket's options. Masking guards browser-era proxies from cache poisoning; inside TLS (wss) it
 * protects nothing and costs a pass over every byte, so the mask is zero, which ws skips on both ends (see
 * README design notes). Exported so the bench measures the transport as configured here.
 */
export const DATA_CHANNEL_SOCKET_OPTIONS = {
  perMessageDeflate: false,
  // Agent messages are at most a few KiB (1 KiB data payloads, small JSON); a peer sending more is refused (1009).
  maxPayload: 4 * 1024 * 1024,
  generateMask: zeroMask,
} as const satisfies WebSocket.ClientOptions;

/** Host part of a stream URL, for logs: the URL itself is never logged (STYLE: logging). */
export function describeStreamUrl(streamUrl: string): string {
  try {
    return new URL(streamUrl).host;
  } catch {
    return '<invalid stream url>';
  }
}

/**
 * The headers that sign a GET of `streamUrl` (the WebSocket upgrade) with SigV4, service `ssmmessages`:
 * `host`, `x-amz-date`, `authorization` and, with temporary credentials, `x-amz-security-token`; the query
 * (`role=publish_subscribe`) is signed too. Credentials and region are resolved at each call. The headers
 * carry a signature: never log them.
 */
export async function signDataChannelUpgrade(streamUrl: string, signing: UpgradeSigning, signingDate?: Date): Promise<Record<string, string>> {
  const url = new URL(streamUrl);
  const [{ SignatureV4, Sha256 }, credentials, region] = await Promise.all([preloadAwsSdk(), signing.credentials(), signing.region()]);
  // No x-amz-content-sha256: the official plugin signs only host and x-amz-date (and the token) on the upgrade.
  const signer = new SignatureV4({ service: DATA_CHANNEL_SIGNING_SERVICE, region, credentials, sha256: Sha256, applyChecksum: false });
  const signed = await signer.sign(
    {
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      // What ws sends: the URL's pathname and search, as they are.
      path: url.pathname,
      query: parseRawQuery(url.search),
      headers: { host: url.host },
    },
    signingDate ? { signingDate } : {},
  );
  return signed.headers;
}

/**
 * Query parameters as sent, percent-decoded, `+` kept (URLSearchParams would read it as a space, and the
 * signature would then cover another query than the one on the wire).
 */
function parseRawQuery(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const part of search.replace(/^\?/, '').split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = safeDecode(eq === -1 ? part : part.slice(0, eq));
    const value = safeDecode(eq === -1 ? '' : part.slice(eq + 1));
    const previous = query[name];
    query[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return query;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Sign within `timeoutMs`: a credential source that hangs must not hang the connect. */
async function signWithin(streamUrl: string, signing: UpgradeSigning, timeoutMs: number): Promise<Record<string, string>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BridgeError(ErrorCode.TIMEOUT, `resolving AWS credentials to sign the data channel took more than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([signDataChannelUpgrade(streamUrl, signing), deadline]);
  } catch (err) {
    throw mapAwsError(err, { action: 'signing the data channel' });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Open the WebSocket to a StreamUrl and send OpenDataChannelInput as the first (text) frame (SPEC §2).
 * With `signing`, the upgrade is signed first (credentials resolved now: every connect and resume signs
 * afresh). Resolves with the transport once the frame is queued; every later frame is binary.
 */
export async function connectDataChannel(streamUrl: string, tokenValue: string, options: ConnectDataChannelOptions): Promise<WebSocketTransport> {
  checkStreamUrl(streamUrl, options.endpointUrl);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const headers = options.signing ? await signWithin(streamUrl, options.signing, timeoutMs) : undefined;
  const ws = new WebSocket(streamUrl, {
    ...DATA_CHANNEL_SOCKET_OPTIONS,
    handshakeTimeout: timeoutMs,
    ...(headers ? { headers } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: BridgeError): void => {
      cleanup();
      // terminate() during the handshake emits 'error' ("closed before the connection was established"):
      // the socket keeps a listener to its end, or that error is uncaught.
      ws.on('error', () => {});
      ws.terminate();
      reject(err);
    };
    const onOpen = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void =>
      fail(new BridgeError(ErrorCode.SERVICE_ERROR, `could not open the data channel to ${describeStreamUrl(streamUrl)}: ${err.message}`, { cause: err }));
    const onUnexpected = (_req: unknown, res: { statusCode?: number; headers?: Record<string, string | string[] | undefined> }): void => {
      // The AWS error type, when the gateway sends one (a refused signature: InvalidSignatureException, …).
      const type = res.headers?.['x-amzn-errortype'];
      const detail = typeof type === 'string' && /^[A-Za-z]{1,100}$/.test(type) ? ` ${type}` : '';
      fail(new BridgeError(ErrorCode.SERVICE_ERROR, `the data channel at ${describeStreamUrl(streamUrl)} refused the connection (HTTP ${res.statusCode ?? '?'}${detail})`));
    };
    const cleanup = (): void => {
      ws.off('open', onOpen);
      ws.off('error', onError);
      ws.off('unexpected-response', onUnexpected);
    };
    ws.on('open', onOpen);
    ws.on('error', onError);
    ws.on('unexpected-response', onUnexpected);
  });
  const transport = new WebSocketTransport(ws, options);
  transport.sendText(
    encodeOpenDataChannelInput({
      MessageSchemaVersion: '1.0',
      RequestId: randomUUID(),
      TokenValue: tokenValue,
      ClientId: options.clientId,
      ClientVersion: options.clientVersion ?? CLIENT_VERSION,
    }),
  );
  return transport;
}

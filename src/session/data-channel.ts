import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { WebSocketTransport, type WebSocketTransportOptions } from '../channel/index.js';
import { BridgeError, ErrorCode } from '../errors.js';
import { CLIENT_VERSION, encodeOpenDataChannelInput } from '../protocol/index.js';

export interface ConnectDataChannelOptions extends WebSocketTransportOptions {
  clientId: string;
  clientVersion?: string;
  connectTimeoutMs?: number;
}

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
  maxPayload: 64 * 1024 * 1024,
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
 * Open the WebSocket to a StreamUrl and send OpenDataChannelInput as the first (text) frame (SPEC §2).
 * Resolves with the transport once the frame is queued; every later frame is binary.
 */
export async function connectDataChannel(streamUrl: string, tokenValue: string, options: ConnectDataChannelOptions): Promise<WebSocketTransport> {
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const ws = new WebSocket(streamUrl, {
    ...DATA_CHANNEL_SOCKET_OPTIONS,
    handshakeTimeout: timeoutMs,
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: BridgeError): void => {
      cleanup();
      ws.terminate();
      reject(err);
    };
    const onOpen = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void =>
      fail(new BridgeError(ErrorCode.SERVICE_ERROR, `could not open the data channel to ${describeStreamUrl(streamUrl)}: ${err.message}`, { cause: err }));
    const onUnexpected = (_req: unknown, res: { statusCode?: number }): void =>
      fail(new BridgeError(ErrorCode.SERVICE_ERROR, `the data channel at ${describeStreamUrl(streamUrl)} refused the connection (HTTP ${res.statusCode ?? '?'})`));
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

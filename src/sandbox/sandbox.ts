import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { AWS_JSON_1_1, createApiHandler, SsmApiError } from './api/index.js';
import { verifySigV4 } from './api/sigv4-verifier.js';
import { isTimeout, loadSandboxConfig, type SandboxConfig } from './config.js';
import { acceptedCredentials } from './credentials.js';
import { createControlHandler, FaultState } from './faults/index.js';
import { Gateway, type GatewaySessionInfo, type GatewaySessionStore, type SessionTraffic } from './gateway/gateway.js';
import { SessionRegistry } from './registry.js';

export interface SandboxOptions {
  /** Loopback by default; the sandbox has no authentication worth the name. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  config: SandboxConfig | unknown;
  /**
   * Pace the agent like the official one (a 1 ms sleep after every 1 KiB message, per session): on unless this
   * or the config's `paced` says false. Off is for speed tests; every other agent behaviour stays.
   */
  paced?: boolean;
  /**
   * Session Manager's idle session timeout in ms (1 to 2^31 − 1): overrides the config's `idleSessionTimeoutMs`
   * (default 20 minutes). A session with no new stream data either way for this long is ended.
   */
  idleSessionTimeoutMs?: number;
  /** Agent timing for tests: the not-ready window after HandshakeComplete, the heartbeat. */
  agent?: { pluginStartDelayMs?: number; heartbeat?: { pingIntervalMs: number; pongWaitMs: number } };
  /** Seed for fault-injection decisions. */
  seed?: number;
  /** Shorter smux keep-alive timing for tests (the agent's is 10 s / 30 s). */
  smuxKeepAlive?: { intervalMs: number; timeoutMs: number };
  logger?: Logger;
}

export interface Sandbox {
  /** http://host:port — the SSM API endpoint, the gateway and the control API share it. */
  endpoint: string;
  port: number;
  registry: SessionRegistry;
  faults: FaultState;
  gateway: Gateway;
  config: SandboxConfig;
  /** Whether the agent is paced (1 ms per message). */
  paced: boolean;
  /** The idle session timeout in force (options, else config). */
  idleSessionTimeoutMs: number;
  /** Counters of a live session's data channel. */
  traffic(sessionId: string): SessionTraffic | undefined;
  close(): Promise<void>;
}

/** Start the SSM API, the gateway and the agents on one HTTP server. */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const logger = options.logger ?? silentLogger;
  const config = loadSandboxConfig(options.config);
  if (options.idleSessionTimeoutMs !== undefined && !isTimeout(options.idleSessionTimeoutMs)) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `idleSessionTimeoutMs must be a whole number of milliseconds from 1 to 2147483647, got ${String(options.idleSessionTimeoutMs)}`);
  }
  const idleSessionTimeoutMs = options.idleSessionTimeoutMs ?? config.idleSessionTimeoutMs;
  const registry = new SessionRegistry(config);
  const faults = new FaultState(options.seed ?? 1);
  const store: GatewaySessionStore = {
    authorize(sessionId, token): GatewaySessionInfo | undefined {
      const record = registry.checkToken(sessionId, token);
      if (!record) return undefined;
      return {
        sessionId: record.sessionId,
        targetId: record.targetId,
        agentVersion: record.target.agentVersion,
        properties: record.properties,
        resolveDestination: (host, port) => registry.resolveDestination(record, host, port),
      };
    },
    exists: (sessionId) => registry.get(sessionId) !== undefined,
    connected: (sessionId) => registry.markConnected(sessionId),
    disconnected: (sessionId) => registry.markDisconnected(sessionId),
    ended: (sessionId, reason, output) => registry.terminate(sessionId, reason, output),
  };
  const gateway = new Gateway({
    store,
    faults: () => faults.settings,
    takeCorruption: () => faults.takeCorruption(),
    random: () => faults.random(),
    idleSessionTimeoutMs,
    agent: {
      paced: options.paced ?? config.paced,
      ...options.agent,
      ...(options.smuxKeepAlive ? { smuxKeepAlive: options.smuxKeepAlive } : {}),
    },
    logger,
  });
  registry.on('terminated', (record) => gateway.terminate(record.sessionId, record.channelClosedOutput ?? record.terminatedReason ?? ''));
  faults.on('dropRequested', (sessionId: string) => gateway.drop(sessionId));
  faults.on('sessionFaultRequested', (sessionId, fault) => gateway.applySessionFault(sessionId, fault));

  const api = createApiHandler(registry, faults, config, logger);
  const control = createControlHandler(registry, faults, { traffic: (id: string) => gateway.traffic(id) });
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').startsWith('/_sandbox/')) control(req, res);
    else api(req, res);
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const credentials = acceptedCredentials(config);
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {}); // a peer that resets mid-answer; the close that follows is all there is to do
    try {
      const target = dataChannelTarget(req.url ?? '/');
      if (target === 'malformed') return refuseUpgrade(socket, 400, { message: 'The request target is not a valid URL path (bad percent-encoding?).' });
      // Official clients sign the upgrade since 1.2.688.0; older ones send none, and are still let in.
      if (req.headers.authorization !== undefined) {
        verifySigV4({ method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders, body: EMPTY_BODY }, { service: 'ssmmessages', region: config.region, credentials });
        if (target !== undefined) registry.countSignedUpgrade(target);
      }
      if (!gateway.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    } catch (err) {
      if (err instanceof SsmApiError) {
        logger.debug({ type: err.type, status: err.status, err: err.message }, 'data-channel upgrade refused');
        return refuseUpgrade(socket, err.status, { __type: err.type, message: err.message }, { 'x-amzn-ErrorType': err.type });
      }
      logger.error({ err: err instanceof Error ? err.stack ?? err.message : String(err) }, 'data-channel upgrade: unexpected error');
      refuseUpgrade(socket, 500, { message: 'An internal error occurred in the sandbox.' });
    }
  });
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    const onListenError = (err: NodeJS.ErrnoException): void => {
      gateway.close();
      registry.close();
      reject(sandboxListenError(err, host, port));
    };
    server.once('error', onListenError);
    server.listen(port, host, () => {
      server.off('error', onListenError);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    endpoint: `http://${hostForUrl}:${address.port}`,
    port: address.port,
    registry,
    faults,
    gateway,
    config,
    paced: options.paced ?? config.paced,
    idleSessionTimeoutMs,
    traffic: (id) => gateway.traffic(id),
    close: async () => {
      gateway.close();
      registry.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

const EMPTY_BODY = new Uint8Array(0);
const DATA_CHANNEL_PATH = /^\/v1\/data-channel\/([^/]+)$/;
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 500: 'Internal Server Error' };

/**
 * The session id of a data-channel upgrade's target (read as the gateway reads it); undefined for another
 * path, 'malformed' for a target that is no URL or has bad percent-encoding, which the gateway must not see.
 */
function dataChannelTarget(url: string): string | undefined | 'malformed' {
  try {
    const match = DATA_CHANNEL_PATH.exec(new URL(url, 'http://sandbox').pathname);
    return match ? decodeURIComponent(match[1]!) : undefined;
  } catch {
    return 'malformed';
  }
}

/** Answer an upgrade with an HTTP error and a JSON body, before any WebSocket exists. */
function refuseUpgrade(socket: Duplex, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
    `Content-Type: ${AWS_JSON_1_1}`,
    `Content-Length: ${Buffer.byteLength(text)}`,
    `x-amzn-RequestId: ${randomUUID()}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'Connection: close',
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
}

/** A failed listen as one actionable line. */
function sandboxListenError(err: NodeJS.ErrnoException, host: string, port: number): BridgeError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new BridgeError(ErrorCode.PORT_IN_USE, `${where} is already in use; choose another --port (0 picks a free one)`, { cause: err });
    case 'EACCES':
      return new BridgeError(ErrorCode.PORT_IN_USE, `permission denied to listen on ${where}; use a port above 1023`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new BridgeError(ErrorCode.INVALID_ARGUMENT, `${host} is not an address of this machine; check --host`, { cause: err });
    default:
      return new BridgeError(ErrorCode.INVALID_ARGUMENT, `cannot listen on ${where}: ${err.message}`, { cause: err });
  }
}

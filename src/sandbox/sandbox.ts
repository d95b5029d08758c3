import http from 'node:http';
import type net from 'node:net';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { createApiHandler } from './api/index.js';
import { loadSandboxConfig, type SandboxConfig } from './config.js';
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
  /** Counters of a live session's data channel. */
  traffic(sessionId: string): SessionTraffic | undefined;
  close(): Promise<void>;
}

/** Start the SSM API, the gateway and the agents on one HTTP server. */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const logger = options.logger ?? silentLogger;
  const config = loadSandboxConfig(options.config);
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
    ended: (sessionId, reason) => registry.terminate(sessionId, reason),
  };
  const gateway = new Gateway({
    store,
    faults: () => faults.settings,
    takeCorruption: () => faults.takeCorruption(),
    random: () => faults.random(),
    agent: {
      paced: options.paced ?? config.paced,
      ...options.agent,
      ...(options.smuxKeepAlive ? { smuxKeepAlive: options.smuxKeepAlive } : {}),
    },
    logger,
  });
  registry.on('terminated', (record: { sessionId: string; terminatedReason?: string }) => gateway.terminate(record.sessionId, record.terminatedReason ?? ''));
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
  server.on('upgrade', (req, socket, head) => {
    if (!gateway.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
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

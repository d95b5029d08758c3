import { existsSync } from 'node:fs';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import net from 'node:net';
import { BridgeError, ErrorCode } from '../errors.js';

/** Where the local end listens: a TCP address and port, or a unix socket path. */
export type LocalEndpoint = { kind: 'tcp'; address: string; port: number } | { kind: 'unix'; path: string };

export interface LocalListener {
  server: net.Server;
  /** The bound endpoint (the real port when 0 was asked for). */
  endpoint: LocalEndpoint;
  close(): Promise<void>;
}

/** Human form: 127.0.0.1:5432, [::1]:5432 or /path/to.sock */
export function describeEndpoint(endpoint: LocalEndpoint): string {
  if (endpoint.kind === 'unix') return endpoint.path;
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

/**
 * Listen on a TCP port or a unix socket (mode 0600). Half-open connections are allowed, so a client that
 * shuts its write side can still read the reply. Errors are BridgeErrors with actionable messages.
 */
export async function listenLocal(endpoint: LocalEndpoint, onConnection: (socket: net.Socket) => void): Promise<LocalListener> {
  // sun_path holds 108 bytes with its NUL: a longer path is truncated by bind(), silently, into another file.
  if (endpoint.kind === 'unix' && Buffer.byteLength(endpoint.path) > MAX_SOCKET_PATH_BYTES) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `the --local-socket path is ${Buffer.byteLength(endpoint.path)} bytes; unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}: choose a shorter path`);
  }
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
  if (endpoint.kind === 'unix') await removeStaleSocket(endpoint.path);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(listenError(err, endpoint));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    if (endpoint.kind === 'unix') {
      // Created 0600 from the start: a chmod after listen() left a moment in which, under a lax umask, another
      // user could connect. bind() runs inside listen(), synchronously, so the umask covers exactly it.
      const previous = process.umask(0o177);
      try {
        server.listen(endpoint.path);
      } finally {
        process.umask(previous);
      }
    } else server.listen(endpoint.port, endpoint.address);
  });
  let bound: LocalEndpoint = endpoint;
  if (endpoint.kind === 'unix') {
    await chmod(endpoint.path, 0o600);
  } else {
    const address = server.address() as net.AddressInfo;
    bound = { kind: 'tcp', address: address.address, port: address.port };
  }
  return {
    server,
    endpoint: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

/** Linux's sun_path is 108 bytes, one of them the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

function listenError(err: NodeJS.ErrnoException, endpoint: LocalEndpoint): BridgeError {
  const where = describeEndpoint(endpoint);
  // Node reports a missing directory as EACCES for a unix socket: look.
  if (endpoint.kind === 'unix' && (err.code === 'ENOENT' || err.code === 'ENOTDIR' || !existsSync(dirname(endpoint.path)))) {
    return new BridgeError(ErrorCode.INVALID_ARGUMENT, `the directory of ${where} does not exist; create it or choose another --local-socket`, { cause: err });
  }
  if (endpoint.kind === 'unix' && (err.code === 'EACCES' || err.code === 'EPERM')) {
    return new BridgeError(ErrorCode.PORT_IN_USE, `permission denied to create ${where}; choose a directory you can write for --local-socket`, { cause: err });
  }
  switch (err.code) {
    case 'EADDRINUSE':
      return new BridgeError(
        ErrorCode.PORT_IN_USE,
        endpoint.kind === 'unix' ? `${where} is already in use; choose another --local-socket` : `${where} is already in use; choose another --local-port (0 picks a free one)`,
        { cause: err },
      );
    case 'EACCES':
      return new BridgeError(ErrorCode.PORT_IN_USE, `permission denied to listen on ${where}; use a port above 1023 or another path`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new BridgeError(ErrorCode.INVALID_ARGUMENT, `${endpoint.kind === 'tcp' ? endpoint.address : where} is not an address of this machine; check --local-address`, { cause: err });
    default:
      return new BridgeError(ErrorCode.INVALID_ARGUMENT, `cannot listen on ${where}: ${err.message}`, { cause: err });
  }
}

/** A socket file left by a crashed run is removed; anything else at that path is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new BridgeError(ErrorCode.PORT_IN_USE, `${path} exists and is not a socket; choose another --local-socket`);
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (inUse) throw new BridgeError(ErrorCode.PORT_IN_USE, `${path} is already in use by another process; choose another --local-socket`);
  try {
    await unlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new BridgeError(ErrorCode.PORT_IN_USE, `${path} is a stale socket we may not remove (${code || (err as Error).message}); remove it or choose another --local-socket`, { cause: err });
  }
}

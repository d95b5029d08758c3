import net from 'node:net';

/** Where the emulated agent's dial of host:port on the managed node lands on this machine. */
export type ResolveDestination = (host: string, port: string) => { host: string; port: number } | undefined;

export class DialError extends Error {
  constructor(readonly destination: string, message: string) {
    super(message);
    this.name = 'DialError';
  }
}

/** Connect to a destination, resolved through the target's port map; rejects with DialError. */
export function dial(resolve: ResolveDestination, host: string, port: string, refuse: boolean, timeoutMs = 10_000): Promise<net.Socket> {
  const destination = `${host}:${port}`;
  if (refuse) return Promise.reject(new DialError(destination, `connection to ${destination} refused (fault injection)`));
  const local = resolve(host, port);
  if (local === undefined) return Promise.reject(new DialError(destination, `dial tcp ${destination}: connect: connection refused`));
  return new Promise((resolvePromise, reject) => {
    const socket = net.connect({ host: local.host, port: local.port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DialError(destination, `dial tcp ${destination}: i/o timeout`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolvePromise(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new DialError(destination, `dial tcp ${destination}: ${err.message}`));
    });
  });
}

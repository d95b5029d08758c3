import net from 'node:net';
import { within } from './servers.js';

/** Two ends of one real TCP connection on 127.0.0.1 (free port). */
export interface SocketPair {
  /** The connecting end. */
  client: net.Socket;
  /** The accepted end. */
  server: net.Socket;
  /** Destroy both sockets and close the listener. */
  close(): Promise<void>;
}

export async function createSocketPair(timeoutMs = 5_000): Promise<SocketPair> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect({ host: '127.0.0.1', port });
  const connected = new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  let serverSocket: net.Socket;
  try {
    [serverSocket] = await within(Promise.all([accepted, connected]), timeoutMs, 'TCP socket pair on 127.0.0.1');
  } catch (err) {
    client.destroy();
    server.close();
    throw err;
  }
  for (const s of [client, serverSocket]) {
    s.setNoDelay(true);
    // Tests that kill a connection on purpose must not crash on the peer's ECONNRESET.
    s.on('error', () => {});
  }
  return {
    client,
    server: serverSocket,
    close: () =>
      new Promise<void>((resolve) => {
        client.destroy();
        serverSocket.destroy();
        server.close(() => resolve());
      }),
  };
}

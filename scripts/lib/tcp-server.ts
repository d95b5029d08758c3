import net from 'node:net';

/*
 * A TCP server on 127.0.0.1 with a free port, shared by the tests (test/helpers/servers.ts re-exports it) and
 * the bench's remote servers: under scripts/ so that both tsconfig.json and tsconfig.build.json compile it.
 */

/** A TCP server on 127.0.0.1 with a free port; closes its connections on close(). */
export interface TestServer {
  port: number;
  server: net.Server;
  close(): Promise<void>;
}

export async function listenTcp(onConnection: (socket: net.Socket) => void, options: net.ServerOpts = {}): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer(options, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

import net from 'node:net';

/**
 * A TCP relay on 127.0.0.1 in front of the sandbox that can take the whole "network" away: `blackout()` makes
 * every connection open at that moment a black hole for good (bytes both ways are read and discarded, nothing
 * closes, as when a NAT mapping or a Wi-Fi link is lost), and every connection accepted during the blackout
 * is one too. `restore()` lets new connections through again; the old ones stay dead, as they would.
 * Both the SSM API (HTTP keep-alive sockets of the SDK) and the data-channel WebSocket go through it when the
 * CLI's --endpoint-url names it (the sandbox builds the StreamUrl from the Host header).
 */
export interface BlackoutRelay {
  port: number;
  endpoint: string;
  blackout(): void;
  restore(): void;
  /** Connections accepted so far, and how many of them are black holes. */
  stats(): { connections: number; dead: number };
  close(): Promise<void>;
}

export async function startBlackoutRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<BlackoutRelay> {
  let dark = false;
  let connections = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; dead: boolean }>();
  const kill = (pair: { client: net.Socket; upstream: net.Socket; dead: boolean }): void => {
    if (pair.dead) return;
    pair.dead = true;
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    // Keep reading so neither side sees backpressure: the bytes vanish, as on a dead path.
    pair.client.on('data', () => {});
    pair.upstream.on('data', () => {});
    pair.client.resume();
    pair.upstream.resume();
  };
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const pair = { client, upstream, dead: false };
    pairs.add(pair);
    client.on('error', () => {});
    upstream.on('error', () => {});
    const forget = (): void => {
      // A live pair passes a close on; a dead one never tells either side anything.
      if (!pair.dead) {
        client.destroy();
        upstream.destroy();
      }
    };
    client.on('close', () => {
      forget();
      if (client.destroyed && upstream.destroyed) pairs.delete(pair);
    });
    upstream.on('close', () => {
      forget();
      if (client.destroyed && upstream.destroyed) pairs.delete(pair);
    });
    if (dark) {
      kill(pair);
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    blackout() {
      dark = true;
      for (const pair of pairs) kill(pair);
    },
    restore() {
      dark = false;
    },
    stats() {
      return { connections, dead: [...pairs].filter((p) => p.dead).length };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, upstream } of pairs) {
          client.destroy();
          upstream.destroy();
        }
        pairs.clear();
        server.close(() => resolve());
      }),
  };
}

import type { AddressInfo } from 'node:net';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

/** Resolve within `ms` or reject naming `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

export interface WsServer {
  url: string;
  /** The next accepted socket. */
  connection: Promise<WebSocket>;
  close(): Promise<void>;
}

/** A `ws` server on 127.0.0.1 (free port) for one connection. */
export async function startWsServer(): Promise<WsServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const connection = new Promise<WebSocket>((resolve) =>
    wss.once('connection', (ws) => {
      ws.binaryType = 'nodebuffer';
      ws.on('error', () => {});
      resolve(ws);
    }),
  );
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1/data-channel/bench`,
    connection,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

export interface TcpServer {
  port: number;
  connection: Promise<net.Socket>;
  close(): Promise<void>;
}

export async function startTcpServer(): Promise<TcpServer> {
  const sockets = new Set<net.Socket>();
  let accept: (s: net.Socket) => void = () => {};
  const connection = new Promise<net.Socket>((resolve) => (accept = resolve));
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    accept(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    connection,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

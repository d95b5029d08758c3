import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { within } from './servers.js';

/*
 * Real `ws` connections for channel tests: an agent-side WebSocketServer on 127.0.0.1 (free port) whose
 * accepted sockets are handed out in order, and a client connector. Everything opened here is closed by
 * `close()`.
 */

export interface AgentServer {
  readonly wss: WebSocketServer;
  /** ws://127.0.0.1:PORT */
  readonly url: string;
  /** The next server-side socket accepted (in order); rejects after `timeoutMs`. */
  nextConnection(timeoutMs?: number): Promise<WebSocket>;
  /** Terminate every accepted socket and close the server. */
  close(): Promise<void>;
}

export async function startAgentServer(): Promise<AgentServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const accepted: WebSocket[] = [];
  const waiters: ((ws: WebSocket) => void)[] = [];
  const all = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    all.add(ws);
    ws.on('close', () => all.delete(ws));
    ws.on('error', () => {});
    const waiter = waiters.shift();
    if (waiter) waiter(ws);
    else accepted.push(ws);
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    wss,
    url: `ws://127.0.0.1:${port}`,
    nextConnection(timeoutMs = 5000) {
      const ready = accepted.shift();
      if (ready) return Promise.resolve(ready);
      return within(new Promise<WebSocket>((resolve) => waiters.push(resolve)), timeoutMs, 'the agent server to accept a connection');
    },
    close() {
      for (const ws of all) ws.terminate();
      return new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Open a client WebSocket and wait for it to be open. */
export async function openClient(url: string, timeoutMs = 5000, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, ...options });
  ws.binaryType = 'nodebuffer';
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      }),
      timeoutMs,
      `a WebSocket to ${url} to open`,
    );
  } catch (err) {
    ws.terminate();
    throw err;
  }
  ws.on('error', () => {});
  return ws;
}

/** Connect a client to `url` (the server itself or a relay in front of it) and return both ends. */
export async function connectPair(server: AgentServer, url: string = server.url, path = '/v1/data-channel/test-session'): Promise<{ client: WebSocket; agent: WebSocket }> {
  const agentSide = server.nextConnection();
  const client = await openClient(url + path);
  const agent = await agentSide;
  return { client, agent };
}

/** Run registered teardown steps (latest first); for afterEach. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const steps = this.steps.splice(0).reverse();
    for (const step of steps) {
      try {
        await within(Promise.resolve(step()), 5000, 'a teardown step');
      } catch {
        // teardown is best effort; the test already reported what mattered
      }
    }
  }
}

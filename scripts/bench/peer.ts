import net from 'node:net';
import WebSocket from 'ws';
import { ReliableChannel, WebSocketTransport } from '../../src/channel/index.js';
import { DATA_CHANNEL_SOCKET_OPTIONS } from '../../src/session/data-channel.js';
import { receiveBytes, receiveFrames, sendFrames, writeBytes } from './io.js';

/*
 * The far end of a throughput benchmark, in its own process (as the client and the agent are in real use):
 * started by scripts/bench/peer-process.ts with one task as JSON in argv[2]; a receiving task reports
 * `{ mbps }` over IPC, a sending task `{ done: true }`.
 */

export type PeerTask =
  | { kind: 'tcp-send'; port: number; bytes: number }
  | { kind: 'ws-send'; url: string; bytes: number; frameBytes: number; cork: boolean }
  | { kind: 'ws-receive'; url: string; bytes: number }
  | { kind: 'channel-send'; url: string; bytes: number }
  | { kind: 'channel-receive'; url: string; bytes: number };

export type PeerReport = { mbps: number } | { done: true } | { error: string };

/** A client WebSocket configured as the product's (zero mask), so the rows measure what users run. */
function connectWebSocket(url: string): WebSocket {
  const ws = new WebSocket(url, DATA_CHANNEL_SOCKET_OPTIONS);
  ws.binaryType = 'nodebuffer';
  return ws;
}

/**
 * Wait for 'open'. A receiver must attach its listeners before this: frames the server sends at once can
 * arrive with the 101 response and are emitted (from a nextTick) before an `await`'s continuation runs.
 */
function opened(ws: WebSocket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
}

async function runTask(task: PeerTask): Promise<PeerReport> {
  switch (task.kind) {
    case 'tcp-send': {
      const socket = net.connect({ host: '127.0.0.1', port: task.port });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      await writeBytes(socket, task.bytes);
      await new Promise<void>((resolve) => socket.end(resolve));
      return { done: true };
    }
    case 'ws-send': {
      const ws = connectWebSocket(task.url);
      await opened(ws);
      await sendFrames(ws, task.bytes, task.frameBytes, task.cork);
      return { done: true };
    }
    case 'ws-receive': {
      const ws = connectWebSocket(task.url);
      const mbps = receiveFrames(ws, task.bytes);
      await opened(ws);
      return { mbps: await mbps };
    }
    case 'channel-send':
    case 'channel-receive': {
      const ws = connectWebSocket(task.url);
      const channel = new ReliableChannel({ role: 'client' });
      channel.attach(new WebSocketTransport(ws));
      const mbps = task.kind === 'channel-receive' ? receiveBytes(channel.data, task.bytes) : undefined;
      await opened(ws);
      if (mbps) return { mbps: await mbps };
      await writeBytes(channel.data, task.bytes);
      return { done: true };
    }
  }
}

const task = JSON.parse(process.argv[2] ?? '{}') as PeerTask;
runTask(task).then(
  // The parent may have stopped us already (it had what it needed): a failed send is not an error then.
  (report) => process.send?.(report, undefined, undefined, () => {}),
  (err: unknown) => process.send?.({ error: err instanceof Error ? err.message : String(err) }, undefined, undefined, () => {}),
);
// The bench process ends us when it has its number (or gives up); losing it ends us too.
process.on('disconnect', () => process.exit(0));

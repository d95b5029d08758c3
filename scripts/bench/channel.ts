import { ReliableChannel, WebSocketTransport } from '../../src/channel/index.js';
import { receiveBytes, writeBytes } from './io.js';
import { checkDone, mbpsOf, startPeer } from './peer-process.js';
import { startWsServer, within } from './servers.js';
import { MiB, type BenchRow } from './types.js';

/*
 * The reliable channel over a loopback WebSocket, client and agent in two processes (as in real use):
 * payload MB/s through `data` with backpressure, every message sequenced, digested and acknowledged
 * (SPEC §5), default options (1 KiB payloads, 1024 in flight).
 */

const BYTES = 64 * MiB;
const TIMEOUT_MS = 60_000;

async function channelRun(direction: 'up' | 'down'): Promise<number> {
  const server = await startWsServer();
  const peer = startPeer({ kind: direction === 'up' ? 'channel-send' : 'channel-receive', url: server.url, bytes: BYTES });
  const agent = new ReliableChannel({ role: 'agent' });
  agent.data.on('error', () => {});
  try {
    const ws = await within(server.connection, TIMEOUT_MS, 'the client peer to connect');
    agent.attach(new WebSocketTransport(ws));
    if (direction === 'up') {
      const mbps = await within(receiveBytes(agent.data, BYTES), TIMEOUT_MS, 'client→agent bytes');
      checkDone(await within(peer.report, TIMEOUT_MS, 'the client peer'));
      return mbps;
    }
    await within(writeBytes(agent.data, BYTES), TIMEOUT_MS, 'agent→client writes');
    return mbpsOf(await within(peer.report, TIMEOUT_MS, 'the client peer'));
  } finally {
    agent.close();
    await peer.stop();
    await server.close();
  }
}

export const rows: BenchRow[] = [
  {
    group: 'channel',
    name: 'client→agent',
    unit: 'MB/s',
    ceiling: 'ceiling/ws 1 KiB frames client→server',
    note: '64 MiB of payload, client channel in a peer process, agent channel here',
    run: () => channelRun('up'),
  },
  {
    group: 'channel',
    name: 'agent→client',
    unit: 'MB/s',
    ceiling: 'ceiling/ws 1 KiB frames server→client',
    note: '64 MiB of payload, agent channel here, client channel in a peer process',
    run: () => channelRun('down'),
  },
];

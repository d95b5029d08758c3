import { receiveBytes, receiveFrames, sendFrames } from './io.js';
import { checkDone, mbpsOf, startPeer } from './peer-process.js';
import { startTcpServer, startWsServer, within } from './servers.js';
import { MiB, type BenchRow } from './types.js';

/*
 * What this machine and the transport can do, measured in the same run as the channel rows, with the same
 * two-process layout (the sender in a peer process, the receiver here or there) and the same byte counts.
 */

const BYTES = 64 * MiB;
const TIMEOUT_MS = 60_000;

/** The peer sends; this process receives and measures. */
async function tcpToHere(): Promise<number> {
  const server = await startTcpServer();
  const peer = startPeer({ kind: 'tcp-send', port: server.port, bytes: BYTES });
  try {
    const socket = await within(server.connection, TIMEOUT_MS, 'the tcp peer to connect');
    const mbps = await within(receiveBytes(socket, BYTES), TIMEOUT_MS, 'tcp bytes');
    checkDone(await within(peer.report, TIMEOUT_MS, 'the tcp peer'));
    return mbps;
  } finally {
    await peer.stop();
    await server.close();
  }
}

/** 1 KiB frames from a `ws` client (masked) in the peer to a `ws` server here. */
async function wsClientToServer(cork: boolean): Promise<number> {
  const server = await startWsServer();
  const peer = startPeer({ kind: 'ws-send', url: server.url, bytes: BYTES, frameBytes: 1024, cork });
  try {
    const ws = await within(server.connection, TIMEOUT_MS, 'the ws peer to connect');
    return await within(receiveFrames(ws, BYTES), TIMEOUT_MS, 'ws frames');
  } finally {
    await peer.stop();
    await server.close();
  }
}

/** 1 KiB frames from the `ws` server here (unmasked) to a `ws` client in the peer. */
async function wsServerToClient(cork: boolean): Promise<number> {
  const server = await startWsServer();
  const peer = startPeer({ kind: 'ws-receive', url: server.url, bytes: BYTES });
  try {
    const ws = await within(server.connection, TIMEOUT_MS, 'the ws peer to connect');
    await within(sendFrames(ws, BYTES, 1024, cork), TIMEOUT_MS, 'sending ws frames');
    return mbpsOf(await within(peer.report, TIMEOUT_MS, 'the ws peer'));
  } finally {
    await peer.stop();
    await server.close();
  }
}

export const rows: BenchRow[] = [
  {
    group: 'ceiling',
    name: 'tcp loopback, node pipe',
    unit: 'MB/s',
    note: '64 MiB over one loopback TCP connection, 64 KiB writes, between two Node processes',
    run: tcpToHere,
  },
  {
    group: 'ceiling',
    name: 'ws 1 KiB frames client→server',
    unit: 'MB/s',
    note: '64 MiB as 1 KiB binary frames, masked (client side), bursts corked into one writev',
    run: () => wsClientToServer(true),
  },
  {
    group: 'ceiling',
    name: 'ws 1 KiB frames server→client',
    unit: 'MB/s',
    note: '64 MiB as 1 KiB binary frames, unmasked (server side), bursts corked into one writev',
    run: () => wsServerToClient(true),
  },
  {
    group: 'ceiling',
    name: 'ws 1 KiB frames client→server, uncorked',
    unit: 'MB/s',
    ceiling: 'ceiling/ws 1 KiB frames client→server',
    note: 'as above but one socket write per frame (what ws does by default)',
    run: () => wsClientToServer(false),
  },
];

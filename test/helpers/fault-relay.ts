import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { mulberry32 } from '../../src/sandbox/faults/mulberry32.js';

/*
 * A WebSocket relay on 127.0.0.1 between a client and an upstream ws server, for channel tests (STYLE: Tests).
 * Every accepted client connection gets its own upstream connection (same path and query); frames are
 * forwarded both ways with their text/binary kind. Binary frames can be dropped, duplicated, reordered
 * (held back and released after the next one) or delayed, per direction, from a seeded PRNG. Text frames
 * (OpenDataChannelInput) always pass untouched and at once.
 *
 * Backpressure: when the receiving side has more than `highWaterBytes` queued, the sending side is paused
 * until it drains, so the relay never hides a stalled peer behind its own memory.
 */

/** `toUpstream`: client → upstream; `toClient`: upstream → client. */
export type RelayDirection = 'toUpstream' | 'toClient';

export interface FaultPlan {
  /** Fractions in [0, 1] of binary frames. */
  dropRate: number;
  duplicateRate: number;
  reorderRate: number;
  delayRate: number;
  delayMs: number;
}

export interface RelayCounters {
  frames: number;
  bytes: number;
  textFrames: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  delayed: number;
}

/** What to do with one binary frame; `undefined` from a filter leaves it to the random plan. */
export type FrameAction = 'pass' | 'drop' | 'duplicate' | 'hold';
export type FrameFilter = (frame: Buffer, direction: RelayDirection) => FrameAction | undefined;

export interface FaultRelayOptions {
  /** ws://127.0.0.1:PORT of the upstream server; the client's path and query are appended. */
  upstreamUrl: string;
  seed?: number;
  toUpstream?: Partial<FaultPlan>;
  toClient?: Partial<FaultPlan>;
  /** Pause the sender when the receiver has more than this queued. */
  highWaterBytes?: number;
  /** A frame held for reordering is released after this long if no other frame comes. */
  maxHoldMs?: number;
}

const NO_FAULTS: FaultPlan = { dropRate: 0, duplicateRate: 0, reorderRate: 0, delayRate: 0, delayMs: 0 };

/** The sandbox's seeded PRNG: the relay's decisions repeat for the same seed and traffic. */
export const seededRandom = mulberry32;

function newCounters(): RelayCounters {
  return { frames: 0, bytes: 0, textFrames: 0, dropped: 0, duplicated: 0, reordered: 0, delayed: 0 };
}

/** One direction of one relayed connection. */
class Pipe {
  private held: Buffer | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private backpressured = false;

  constructor(
    private readonly relay: FaultRelay,
    readonly direction: RelayDirection,
    private readonly src: WebSocket,
    private readonly dst: WebSocket,
  ) {}

  onMessage(data: Buffer, isBinary: boolean): void {
    const counters = this.relay.counters[this.direction];
    if (!isBinary) {
      counters.textFrames++;
      this.send(data, false);
      return;
    }
    counters.frames++;
    counters.bytes += data.length;
    const plan = this.relay.plan(this.direction);
    const random = this.relay.random;
    let action = this.relay.filter?.(data, this.direction);
    if (action === undefined) {
      if (plan.dropRate > 0 && random() < plan.dropRate) action = 'drop';
      else if (plan.duplicateRate > 0 && random() < plan.duplicateRate) action = 'duplicate';
      else if (plan.reorderRate > 0 && this.held === undefined && random() < plan.reorderRate) action = 'hold';
      else action = 'pass';
    }
    if (action === 'drop') {
      counters.dropped++;
      return;
    }
    if (action === 'hold' && this.held === undefined) {
      counters.reordered++;
      this.held = data;
      this.holdTimer = setTimeout(() => this.releaseHeld(), this.relay.maxHoldMs);
      return;
    }
    if (plan.delayRate > 0 && random() < plan.delayRate) {
      counters.delayed++;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.send(data, true);
      }, plan.delayMs);
      this.timers.add(timer);
    } else {
      this.send(data, true);
    }
    if (action === 'duplicate') {
      counters.duplicated++;
      this.send(data, true);
    }
    this.releaseHeld();
  }

  private releaseHeld(): void {
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) this.send(held, true);
  }

  private send(data: Buffer, binary: boolean): void {
    if (this.dst.readyState !== WebSocket.OPEN) return;
    this.dst.send(data, { binary }, () => {
      // Everything queued before this frame is in the kernel now.
      if (this.backpressured && this.dst.bufferedAmount < this.relay.highWaterBytes) {
        this.backpressured = false;
        this.relay.resumeSource(this.src);
      }
    });
    if (!this.backpressured && this.dst.bufferedAmount >= this.relay.highWaterBytes) {
      this.backpressured = true;
      this.relay.pauseSource(this.src);
    }
  }

  get isBackpressured(): boolean {
    return this.backpressured;
  }

  dispose(): void {
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.held = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

interface Connection {
  client: WebSocket;
  upstream: WebSocket;
  pipes: Pipe[];
}

export class FaultRelay {
  readonly counters: Record<RelayDirection, RelayCounters> & { connections: number } = {
    toUpstream: newCounters(),
    toClient: newCounters(),
    connections: 0,
  };
  readonly random: () => number;
  readonly highWaterBytes: number;
  readonly maxHoldMs: number;
  filter: FrameFilter | undefined;
  private readonly plans: Record<RelayDirection, FaultPlan>;
  private readonly upstreamUrl: string;
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly pending = new Set<WebSocket>();
  private readonly rawSockets = new Set<Duplex>();
  private readonly pausedByBackpressure = new Map<WebSocket, number>();
  private frozen = false;
  private port = 0;

  private constructor(options: FaultRelayOptions) {
    this.upstreamUrl = options.upstreamUrl.replace(/\/+$/, '');
    this.random = seededRandom(options.seed ?? 1);
    this.highWaterBytes = options.highWaterBytes ?? 256 * 1024;
    this.maxHoldMs = options.maxHoldMs ?? 20;
    this.plans = {
      toUpstream: { ...NO_FAULTS, ...options.toUpstream },
      toClient: { ...NO_FAULTS, ...options.toClient },
    };
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.server = http.createServer((_req, res) => {
      res.writeHead(426).end();
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Listen on 127.0.0.1 with a free port. */
  static async start(options: FaultRelayOptions): Promise<FaultRelay> {
    const relay = new FaultRelay(options);
    await new Promise<void>((resolve, reject) => {
      relay.server.once('error', reject);
      relay.server.listen(0, '127.0.0.1', () => resolve());
    });
    relay.port = (relay.server.address() as AddressInfo).port;
    return relay;
  }

  /** ws://127.0.0.1:PORT (no trailing slash): append the path the upstream expects. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  plan(direction: RelayDirection): FaultPlan {
    return this.plans[direction];
  }

  /** Change the faults of one direction; applies from the next frame on. */
  setFaults(direction: RelayDirection, plan: Partial<FaultPlan>): void {
    this.plans[direction] = { ...NO_FAULTS, ...plan };
  }

  /** Close every current connection (both legs) with a close frame. */
  closeAll(code = 1001, reason = 'relay closing'): void {
    for (const c of this.connections) {
      this.dispose(c);
      c.client.close(code, reason);
      c.upstream.close(code, reason);
    }
  }

  /** Drop every current connection (both legs) at once, without close frames. */
  terminateAll(): void {
    for (const c of this.connections) {
      this.dispose(c);
      c.client.terminate();
      c.upstream.terminate();
    }
  }

  /**
   * Stop reading both legs of every connection (pings included): the peers see a silent but open socket.
   * `thaw()` undoes it.
   */
  freeze(): void {
    this.frozen = true;
    for (const c of this.connections) {
      c.client.pause();
      c.upstream.pause();
    }
  }

  thaw(): void {
    this.frozen = false;
    for (const c of this.connections) {
      if (!this.pausedByBackpressure.has(c.client)) c.client.resume();
      if (!this.pausedByBackpressure.has(c.upstream)) c.upstream.resume();
    }
  }

  async close(): Promise<void> {
    this.terminateAll();
    for (const ws of this.pending) ws.terminate();
    for (const s of this.rawSockets) s.destroy();
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  pauseSource(ws: WebSocket): void {
    this.pausedByBackpressure.set(ws, (this.pausedByBackpressure.get(ws) ?? 0) + 1);
    ws.pause();
  }

  resumeSource(ws: WebSocket): void {
    const n = (this.pausedByBackpressure.get(ws) ?? 1) - 1;
    if (n > 0) {
      this.pausedByBackpressure.set(ws, n);
      return;
    }
    this.pausedByBackpressure.delete(ws);
    if (!this.frozen && ws.readyState === WebSocket.OPEN) ws.resume();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    this.rawSockets.add(socket);
    socket.on('close', () => this.rawSockets.delete(socket));
    socket.on('error', () => {});
    // Connect upstream first, so a refused upstream is a refused client (and no frame needs queueing).
    const upstream = new WebSocket(this.upstreamUrl + (req.url ?? '/'), { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.pending.add(upstream);
    upstream.on('error', () => {});
    upstream.once('unexpected-response', (_req, res) => {
      this.pending.delete(upstream);
      socket.end(`HTTP/1.1 ${res.statusCode ?? 502} Upstream Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      upstream.terminate();
    });
    upstream.once('close', () => {
      if (this.pending.delete(upstream)) socket.destroy();
    });
    upstream.once('open', () => {
      this.pending.delete(upstream);
      if (socket.destroyed) {
        upstream.terminate();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (client) => this.join(client, upstream));
    });
  }

  private join(client: WebSocket, upstream: WebSocket): void {
    client.binaryType = 'nodebuffer';
    upstream.binaryType = 'nodebuffer';
    const toUpstream = new Pipe(this, 'toUpstream', client, upstream);
    const toClient = new Pipe(this, 'toClient', upstream, client);
    const conn: Connection = { client, upstream, pipes: [toUpstream, toClient] };
    this.connections.add(conn);
    this.counters.connections++;
    client.on('error', () => {});
    client.on('message', (data: Buffer, isBinary: boolean) => toUpstream.onMessage(data, isBinary));
    upstream.on('message', (data: Buffer, isBinary: boolean) => toClient.onMessage(data, isBinary));
    // A close on one leg closes the other the same way: a close frame stays a close frame, a cut stays a cut.
    const mirror = (other: WebSocket) => (code: number, reason: Buffer) => {
      this.dispose(conn);
      if (code === 1005 || code === 1006 || code === 1015) other.terminate();
      else if (other.readyState === WebSocket.OPEN) other.close(code, reason);
    };
    client.on('close', mirror(upstream));
    upstream.on('close', mirror(client));
    if (this.frozen) {
      client.pause();
      upstream.pause();
    }
  }

  private dispose(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    for (const p of conn.pipes) p.dispose();
    this.pausedByBackpressure.delete(conn.client);
    this.pausedByBackpressure.delete(conn.upstream);
  }
}

import type net from 'node:net';
import { decodeFlag, encodeFlag, FlagValue, PayloadType, type LenientAgentMessage } from '../../protocol/index.js';
import { encodeFrame, FrameParser, SmuxCommand, type SmuxFrame } from '../../smux/frame.js';
import type { InputOutcome } from './agent-data-channel.js';
import { COPY_BUFFER_BYTES, MUX_PIPE_BYTES, SMUX_DEFAULTS } from './agent-policy.js';
import { ByteQueue } from './byte-queue.js';
import { dialDestination, writeToDestination } from './destination.js';
import type { PortSession, PortSessionContext } from './port-session.js';
import { runSendLoop } from './send-loop.js';

/*
 * port_mux.go MuxPortSession with the agent's smux server (xtaci/smux v1.5.15 session.go / stream.go), written
 * for the sandbox from those sources; it shares only the pure frame codec with the client's smux.
 *
 *   data channel --write (blocks when the pipe is full)--> [pipe 208 KiB] --recvLoop (stops while the
 *   session's 4 MiB receive budget is spent)--> stream buffers --io.Copy, 32 KiB at a time--> destination
 *
 *   destination --io.Copy--> frames --> [pipe 208 KiB] --transferDataToMgs: 1 KiB, sleep 1 ms--> data channel
 *
 * Per stream, like handleDataTransfer: when either copy ends, both the stream (FIN) and the destination close;
 * a FIN from the client therefore closes the destination once the bytes before it are written (no half-close).
 * A stream's unread bytes are dropped when it closes, and their budget returned (streamClosed).
 */

class AgentMuxStream {
  readonly buffers: Buffer[] = [];
  bufferedBytes = 0;
  finReceived = false;
  dead = false;
  socket: net.Socket | undefined;
  private waiter: (() => void) | undefined;

  constructor(readonly id: number) {}

  push(data: Buffer): void {
    this.buffers.push(data);
    this.bufferedBytes += data.length;
    this.wake();
  }

  /** tryRead: from the first buffer only, at most `max` bytes. */
  read(max: number): Buffer | undefined {
    const first = this.buffers[0];
    if (first === undefined) return undefined;
    const out = first.length <= max ? first : first.subarray(0, max);
    if (out.length === first.length) this.buffers.shift();
    else this.buffers[0] = first.subarray(max);
    this.bufferedBytes -= out.length;
    return out;
  }

  waitForEvent(): Promise<void> {
    return new Promise((resolve) => (this.waiter = resolve));
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

export interface AgentSmuxOptions {
  keepAlive: { intervalMs: number; timeoutMs: number } | false;
  maxReceiveBufferBytes?: number;
}

export class MuxPortSession implements PortSession {
  /** Bytes from the data channel to smux's recvLoop (MgsConn). */
  private readonly inbound = new ByteQueue(MUX_PIPE_BYTES);
  /** Frames from smux's sendLoop to transferDataToMgs. */
  private readonly outbound = new ByteQueue(MUX_PIPE_BYTES);
  private readonly streams = new Map<number, AgentMuxStream>();
  private readonly accepts: AgentMuxStream[] = [];
  private readonly parser = new FrameParser((frame) => this.onFrame(frame));
  private bucket: number;
  private dataReady = false;
  private receiving = false;
  private accepting = false;
  private initialized = false;
  private closedReason: string | undefined;
  private onClosed: ((reason: string) => void) | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly ctx: PortSessionContext;
  private readonly options: AgentSmuxOptions;

  constructor(ctx: PortSessionContext, options: AgentSmuxOptions) {
    this.ctx = ctx;
    this.options = options;
    this.bucket = options.maxReceiveBufferBytes ?? SMUX_DEFAULTS.maxReceiveBufferBytes;
  }

  get ready(): boolean {
    return this.initialized;
  }

  /** Bytes the smux server holds for streams (what the session-wide budget counts). */
  get receiveBudgetUsed(): number {
    return (this.options.maxReceiveBufferBytes ?? SMUX_DEFAULTS.maxReceiveBufferBytes) - this.bucket;
  }

  initialize(): Promise<void> {
    this.initialized = true;
    const keepAlive = this.options.keepAlive;
    if (keepAlive) {
      // session.go keepalive(): a NOP every interval; closed when no frame arrived within a timeout period,
      // unless recvLoop is stopped on a spent budget.
      const ping = setInterval(() => this.writeFrame(SmuxCommand.Nop, 0), keepAlive.intervalMs);
      const check = setInterval(() => {
        if (this.dataReady) this.dataReady = false;
        else if (this.bucket > 0) this.close('smux keep-alive timeout: no frame from the client');
      }, keepAlive.timeoutMs);
      for (const t of [ping, check]) {
        t.unref();
        this.timers.push(t);
      }
    }
    return Promise.resolve();
  }

  handleInput(msg: LenientAgentMessage): InputOutcome | Promise<InputOutcome> {
    if (msg.payloadType === PayloadType.Flag) {
      try {
        if (decodeFlag(msg.payload) === FlagValue.TerminateSession) this.ctx.cancel();
      } catch {
        // an unreadable flag is ignored (binary.Read leaves it 0)
      }
      return undefined;
    }
    if (msg.payloadType !== PayloadType.Output) return undefined;
    if (this.closedReason !== undefined) return new Error('write: broken pipe');
    // mgsConn.conn.Write: blocks while the unix socket is full.
    if (this.inbound.full) return this.inbound.waitForSpace().then(() => this.handleInput(msg));
    this.inbound.push(msg.payload);
    this.receive();
    return undefined;
  }

  run(): Promise<string | undefined> {
    const closed = new Promise<string>((resolve) => (this.onClosed = resolve));
    if (this.closedReason !== undefined) return Promise.resolve(this.closedReason);
    void runSendLoop(this.outbound, this.ctx.channel, this.ctx.paced, () => this.closedReason !== undefined);
    return closed;
  }

  stop(): void {
    this.close('plugin stopped');
  }

  private close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const t of this.timers) clearInterval(t);
    for (const stream of this.streams.values()) {
      stream.dead = true;
      stream.socket?.destroy();
      stream.wake();
    }
    this.streams.clear();
    this.inbound.clear();
    this.outbound.clear();
    this.onClosed?.(reason);
  }

  // ---- recvLoop ----

  private receive(): void {
    if (this.receiving) return;
    this.receiving = true;
    try {
      while (this.bucket > 0 && this.inbound.bytes > 0 && this.accepts.length < SMUX_DEFAULTS.acceptBacklog && this.closedReason === undefined) {
        this.parser.push(this.inbound.take(64 * 1024)!);
      }
    } catch (err) {
      this.close(`smux: ${(err as Error).message}`);
    } finally {
      this.receiving = false;
    }
  }

  private onFrame(frame: SmuxFrame): void {
    this.dataReady = true;
    switch (frame.cmd) {
      case SmuxCommand.Syn:
        if (!this.streams.has(frame.streamId)) {
          const stream = new AgentMuxStream(frame.streamId);
          this.streams.set(frame.streamId, stream);
          this.accepts.push(stream);
          void this.acceptLoop();
        }
        return;
      case SmuxCommand.Fin: {
        const stream = this.streams.get(frame.streamId);
        if (stream) {
          stream.finReceived = true;
          stream.wake();
        }
        return;
      }
      case SmuxCommand.Psh: {
        const stream = this.streams.get(frame.streamId);
        if (stream && frame.data.length > 0) {
          stream.push(frame.data);
          this.bucket -= frame.data.length;
        }
        return;
      }
      default:
        return; // NOP
    }
  }

  private returnTokens(n: number): void {
    const wasSpent = this.bucket <= 0;
    this.bucket += n;
    if (wasSpent && this.bucket > 0) this.receive();
  }

  // ---- handleServerConnections: accept one stream at a time, dial, copy both ways ----

  private async acceptLoop(): Promise<void> {
    if (this.accepting) return;
    this.accepting = true;
    try {
      while (this.accepts.length > 0 && this.closedReason === undefined) {
        const stream = this.accepts.shift()!;
        this.receive(); // the backlog has room again
        let socket: net.Socket;
        try {
          socket = await dialDestination(this.ctx.resolveDestination, this.ctx.host, this.ctx.port, this.ctx.refuseDestination());
        } catch (err) {
          this.ctx.logger.debug({ err: String(err) }, 'agent mux: dial failed');
          if (!this.ctx.channel.sendStreamData(PayloadType.Flag, encodeFlag(FlagValue.ConnectToPortError))) await this.ctx.channel.whenWritable();
          this.closeStream(stream);
          continue;
        }
        if (this.closedReason !== undefined || stream.dead) {
          socket.destroy();
          continue;
        }
        stream.socket = socket;
        this.copyToDestination(stream, socket);
        this.copyFromDestination(stream, socket);
      }
    } finally {
      this.accepting = false;
    }
  }

  /** io.Copy(conn, stream), then conn.Close(). */
  private async copyToDestination(stream: AgentMuxStream, socket: net.Socket): Promise<void> {
    for (;;) {
      const chunk = stream.read(COPY_BUFFER_BYTES);
      if (chunk !== undefined) {
        this.returnTokens(chunk.length);
        let result = writeToDestination(socket, chunk, this.ctx.gate);
        if (result instanceof Promise) result = await result;
        if (result instanceof Error) break;
        continue;
      }
      if (stream.finReceived || stream.dead) break;
      await stream.waitForEvent();
    }
    // Closing the connection also ends the other copy, which closes the stream (FIN).
    socket.end();
    socket.once('finish', () => socket.destroy());
    this.closeStream(stream);
  }

  /** io.Copy(stream, conn), then stream.Close(). */
  private copyFromDestination(stream: AgentMuxStream, socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      if (stream.dead) return;
      for (let offset = 0; offset < chunk.length; offset += SMUX_DEFAULTS.maxFrameBytes) {
        this.writeFrame(SmuxCommand.Psh, stream.id, chunk.subarray(offset, offset + SMUX_DEFAULTS.maxFrameBytes));
      }
      if (this.outbound.full && !socket.isPaused()) {
        socket.pause();
        void this.outbound.waitForSpace().then(() => {
          if (!socket.destroyed) socket.resume();
        });
      }
    });
    const ended = (): void => {
      this.closeStream(stream);
      socket.destroy();
    };
    socket.once('end', ended);
    socket.once('close', ended);
  }

  /** Stream.Close: FIN once, drop what was not read and give its budget back. */
  private closeStream(stream: AgentMuxStream): void {
    if (stream.dead) return;
    stream.dead = true;
    if (this.closedReason !== undefined) return;
    this.writeFrame(SmuxCommand.Fin, stream.id);
    this.streams.delete(stream.id);
    const unread = stream.bufferedBytes;
    stream.buffers.length = 0;
    stream.bufferedBytes = 0;
    stream.wake();
    if (unread > 0) this.returnTokens(unread);
  }

  private writeFrame(cmd: SmuxCommand, streamId: number, data?: Buffer): void {
    if (this.closedReason !== undefined) return;
    this.outbound.push(encodeFrame(data ? { cmd, streamId, data } : { cmd, streamId }));
  }
}

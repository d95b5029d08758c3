import type net from 'node:net';
import { decodeFlag, FlagValue, PayloadType, type LenientAgentMessage } from '../../protocol/index.js';
import type { Logger } from '../../logger.js';
import type { AgentDataChannel, InputOutcome } from './agent-data-channel.js';
import { ByteQueue } from './byte-queue.js';
import { dialDestination, writeToDestination, type DestinationGate } from './destination.js';
import type { ResolveDestination } from './dialer.js';
import { runSendLoop } from './send-loop.js';

/** port.go IPortSession, as the sandbox's plugins implement it. */
export interface PortSession {
  /** IsConnectionAvailable: until it is true, stream data is refused without an ack. */
  readonly ready: boolean;
  /** InitializeSession; a rejection ends the session with its message. */
  initialize(): Promise<void>;
  /** HandleStreamMessage, for Output and Flag payloads once the handshake is complete. */
  handleInput(msg: LenientAgentMessage): InputOutcome | Promise<InputOutcome>;
  /** WritePump: resolves with an error message, or undefined, when the plugin ends by itself. */
  run(): Promise<string | undefined>;
  /** Stop: close every connection. */
  stop(): void;
}

export interface PortSessionContext {
  channel: AgentDataChannel;
  gate: DestinationGate;
  resolveDestination: ResolveDestination;
  host: string;
  port: string;
  refuseDestination: () => boolean;
  paced: boolean;
  /** TerminateSession flag: the plugin's `cancelled` channel. */
  cancel: () => void;
  logger: Logger;
}

/**
 * Bytes read from a destination but not sent yet stand for its socket's kernel receive buffer: past this, the
 * agent stops reading it (the destination then feels TCP backpressure). Not in the source; a decision.
 */
export const DESTINATION_READ_BUFFER_BYTES = 64 * 1024;

/** Feed a destination socket into a queue, pausing the socket while the queue is full. */
export function readInto(socket: net.Socket, queue: ByteQueue): void {
  socket.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    if (queue.full && !socket.isPaused()) {
      socket.pause();
      void queue.waitForSpace().then(() => {
        if (!socket.destroyed) socket.resume();
      });
    }
  });
  socket.once('end', () => queue.end());
  socket.once('close', () => queue.end());
}

/**
 * port_basic.go BasicPortSession: one destination connection, dialled when the plugin starts.
 * - stream (properties without type LocalPortForwarding, e.g. AWS-StartSSHSession): when the destination
 *   closes, the plugin ends and so does the session;
 * - basic (LocalPortForwarding on agents without port_mux.go, or old clients): DisconnectToPort closes the
 *   connection and the next Output message dials again; a destination that closes is redialled the same way
 *   (the client is not told); a failed redial ends the session. It never sends ConnectToPortError.
 */
export class BasicPortSession implements PortSession {
  private conn: net.Socket | undefined;
  private source = new ByteQueue(DESTINATION_READ_BUFFER_BYTES);
  private reconnectToPort = false;
  private reconnected: (() => void) | undefined;
  private failure: string | undefined;
  private stopped = false;
  private readonly ctx: PortSessionContext;
  private readonly localPortForwarding: boolean;

  constructor(ctx: PortSessionContext, localPortForwarding: boolean) {
    this.ctx = ctx;
    this.localPortForwarding = localPortForwarding;
  }

  get ready(): boolean {
    return this.conn !== undefined;
  }

  async initialize(): Promise<void> {
    this.attach(await this.dial());
  }

  handleInput(msg: LenientAgentMessage): InputOutcome | Promise<InputOutcome> {
    if (msg.payloadType === PayloadType.Flag) {
      this.onFlag(msg.payload);
      return undefined;
    }
    if (msg.payloadType !== PayloadType.Output) return undefined;
    if (this.reconnectToPort) return this.redial().then((err) => err ?? this.write(msg.payload));
    return this.write(msg.payload);
  }

  async run(): Promise<string | undefined> {
    for (;;) {
      const source = this.source;
      await runSendLoop(source, this.ctx.channel, this.ctx.paced, () => this.stopped);
      if (this.stopped) return this.failure;
      // handleTCPReadError: stream mode ends the session; basic mode waits for the next data to redial.
      if (!this.localPortForwarding) return undefined;
      if (this.source !== source) continue; // a redial already attached a new connection
      this.closeConnection();
      await new Promise<void>((resolve) => (this.reconnected = resolve));
      if (this.failure !== undefined) return this.failure;
    }
  }

  stop(): void {
    this.stopped = true;
    this.conn?.destroy();
    this.source.clear();
    this.wakeRun();
  }

  private wakeRun(): void {
    const wake = this.reconnected;
    this.reconnected = undefined;
    wake?.();
  }

  private dial(): Promise<net.Socket> {
    return dialDestination(this.ctx.resolveDestination, this.ctx.host, this.ctx.port, this.ctx.refuseDestination()).catch((err: Error) => {
      throw new Error(`Unable to connect to specified port: ${err.message}`);
    });
  }

  private attach(conn: net.Socket): void {
    this.conn = conn;
    this.source = new ByteQueue(DESTINATION_READ_BUFFER_BYTES);
    readInto(conn, this.source);
  }

  private write(payload: Buffer): InputOutcome | Promise<InputOutcome> {
    if (this.conn === undefined) return new Error('no connection');
    return writeToDestination(this.conn, payload, this.ctx.gate);
  }

  private onFlag(payload: Buffer): void {
    let flag: number;
    try {
      flag = decodeFlag(payload);
    } catch {
      return;
    }
    if (flag === FlagValue.TerminateSession) this.ctx.cancel();
    else if (flag === FlagValue.DisconnectToPort) {
      // Stop(): the read in WritePump then fails; basic mode redials on the next data, stream mode ends.
      this.closeConnection();
    }
  }

  private closeConnection(): void {
    this.conn?.destroy();
    this.source.clear();
    if (this.localPortForwarding) this.reconnectToPort = true;
  }

  private async redial(): Promise<InputOutcome> {
    this.ctx.logger.debug({ destination: `${this.ctx.host}:${this.ctx.port}` }, 'agent basic mode: reconnect to port');
    try {
      this.attach(await this.dial());
      this.reconnectToPort = false;
      this.wakeRun();
      return undefined;
    } catch (err) {
      // The write pump gets the error and the plugin ends with it.
      this.failure = (err as Error).message;
      this.stopped = true;
      this.wakeRun();
      return err as Error;
    }
  }
}

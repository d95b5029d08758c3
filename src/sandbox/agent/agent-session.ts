import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { Writable } from 'node:stream';
import type { ReliableChannel } from '../../channel/index.js';
import { coalesceWrites } from '../../coalesce-writes.js';
import { silentLogger, type Logger } from '../../logger.js';
import {
  ActionType,
  decodeFlag,
  decodeHandshakeResponse,
  encodeFlag,
  encodeHandshakeComplete,
  encodeHandshakeRequest,
  FlagValue,
  PayloadType,
  type AgentMessage,
  type PortSessionProperties,
} from '../../protocol/index.js';
import { compareVersions, FIRST_MUX_AGENT_VERSION } from '../../session/handshake.js';
import { SmuxSession, type SmuxStream } from '../../smux/index.js';
import { dial, DialError, type ResolveDestination } from './dialer.js';
import { Pacer } from './pacer.js';

/** Agents from this version on turn smux keep-alive off for current clients (SPEC §7). */
export const FIRST_AGENT_WITH_KEEPALIVE_OPT_OUT = '3.1.1511.0';
/** Clients up to this version get smux keep-alive from the agent (SPEC §2, §7). */
export const LAST_CLIENT_WITH_KEEPALIVE = '1.2.331.0';
export const SMUX_KEEPALIVE = { intervalMs: 10_000, timeoutMs: 30_000 } as const;

export type PortPluginMode = 'stream' | 'basic' | 'mux';

export interface AgentSessionOptions {
  channel: ReliableChannel;
  agentVersion: string;
  properties: PortSessionProperties;
  resolveDestination: ResolveDestination;
  /** Read at dial time, so a fault can be switched on and off during a session. */
  refuseDestination?: () => boolean;
  /** Agent-like 1 KiB / 1 ms pacing of what the agent sends. */
  pacing?: boolean;
  /** Override the keep-alive timing the agent uses when its rules turn smux keep-alive on. */
  smuxKeepAlive?: { intervalMs: number; timeoutMs: number };
  logger?: Logger;
}

/** The mode the real agent picks from its version and the session properties (SPEC §7). */
export function portPluginMode(agentVersion: string, properties: PortSessionProperties): PortPluginMode {
  if (properties.type !== 'LocalPortForwarding') return 'stream';
  return compareVersions(agentVersion, FIRST_MUX_AGENT_VERSION) > 0 ? 'mux' : 'basic';
}

/** Whether the agent runs smux keep-alive for this client (SPEC §7). */
export function agentUsesSmuxKeepAlive(agentVersion: string, clientVersion: string): boolean {
  if (compareVersions(agentVersion, FIRST_AGENT_WITH_KEEPALIVE_OPT_OUT) < 0) return true;
  return compareVersions(clientVersion, LAST_CLIENT_WITH_KEEPALIVE) <= 0;
}

/*
 * The emulated agent's side of one session: the handshake, then the port plugin.
 *
 *   handshaking --HandshakeResponse ok--> running --end(reason)--> ended
 *
 * Events: `end` (reason: string) when the agent ends the session (stream-mode destination closed, dial
 * failure in stream mode, TerminateSession flag, failed handshake).
 */
type AgentState = 'idle' | 'handshaking' | 'running' | 'ended';

export class AgentSession extends EventEmitter {
  clientVersion = '';
  readonly mode: PortPluginMode;
  private state: AgentState = 'idle';
  private readonly options: AgentSessionOptions;
  private readonly channel: ReliableChannel;
  private readonly logger: Logger;
  private readonly sockets = new Set<net.Socket>();
  private smux: SmuxSession | undefined;
  private handshakeStartedNs = 0n;
  // Basic mode: the one destination connection, and a DisconnectToPort that waits for earlier bytes.
  private basicSocket: net.Socket | undefined;
  private basicDial: Promise<net.Socket> | undefined;
  private basicBytesConsumed = 0;
  private basicDisconnectAt: number[] = [];

  constructor(options: AgentSessionOptions) {
    super();
    this.options = options;
    this.channel = options.channel;
    this.logger = options.logger ?? silentLogger;
    this.mode = portPluginMode(options.agentVersion, options.properties);
  }

  /** Send HandshakeRequest; the rest follows from the client's messages. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'handshaking';
    this.channel.on('stream-message', this.onStreamMessage);
    // Stream data sent before HandshakeComplete is acknowledged and dropped, as the agent does (SPEC §4).
    this.channel.data.on('data', discard);
    this.handshakeStartedNs = process.hrtime.bigint();
    this.channel.sendStreamMessage(
      PayloadType.HandshakeRequest,
      encodeHandshakeRequest({
        AgentVersion: this.options.agentVersion,
        RequestedClientActions: [{ ActionType: ActionType.SessionType, ActionParameters: { SessionType: 'Port', Properties: this.options.properties } }],
      }),
    );
  }

  /** Tear down every destination connection. */
  close(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.channel.off('stream-message', this.onStreamMessage);
    this.channel.data.off('data', discard);
    this.smux?.close();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private end(reason: string): void {
    if (this.state === 'ended') return;
    this.close();
    this.emit('end', reason);
  }

  private readonly onStreamMessage = (msg: AgentMessage): void => {
    switch (msg.payloadType) {
      case PayloadType.HandshakeResponse:
        this.onHandshakeResponse(msg);
        return;
      case PayloadType.Flag:
        this.onFlag(decodeFlag(msg.payload));
        return;
      default:
        return; // Size and other payloads have no meaning for a port session
    }
  };

  private onHandshakeResponse(msg: AgentMessage): void {
    if (this.state !== 'handshaking') return;
    const response = decodeHandshakeResponse(msg.payload);
    this.clientVersion = response.ClientVersion;
    const sessionType = response.ProcessedClientActions.find((a) => a.ActionType === ActionType.SessionType);
    if (sessionType === undefined || sessionType.ActionStatus !== 1) {
      this.end(`client failed the SessionType action: ${sessionType?.Error || 'not processed'}`);
      return;
    }
    this.state = 'running';
    this.channel.sendStreamMessage(
      PayloadType.HandshakeComplete,
      encodeHandshakeComplete({ HandshakeTimeToComplete: Number(process.hrtime.bigint() - this.handshakeStartedNs), CustomerMessage: '' }),
    );
    this.channel.data.off('data', discard);
    this.channel.data.pause();
    this.logger.debug({ mode: this.mode, clientVersion: this.clientVersion }, 'agent handshake complete');
    switch (this.mode) {
      case 'stream':
        void this.startStreamMode();
        return;
      case 'basic':
        this.startBasicMode();
        return;
      case 'mux':
        this.startMuxMode();
        return;
    }
  }

  private onFlag(flag: number): void {
    switch (flag) {
      case FlagValue.TerminateSession:
        this.end('TerminateSession flag from the client');
        return;
      case FlagValue.DisconnectToPort:
        if (this.mode === 'basic') {
          // Applies after every byte the client sent before the flag (in-order semantics).
          this.basicDisconnectAt.push(this.channel.stats.payloadBytesReceived);
          this.applyBasicDisconnects();
        }
        return;
      default:
        return;
    }
  }

  private destination(): { host: string; port: string } {
    const host = typeof this.options.properties.host === 'string' && this.options.properties.host ? this.options.properties.host : 'localhost';
    const port = String(this.options.properties.portNumber ?? '');
    return { host, port };
  }

  private dialDestination(): Promise<net.Socket> {
    const { host, port } = this.destination();
    return dial(this.options.resolveDestination, host, port, this.options.refuseDestination?.() ?? false).then((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      return coalesceWrites(socket);
    });
  }

  /** What the agent sends to the client, paced like the official agent when asked. */
  private toClient(socket: net.Socket): NodeJS.ReadableStream {
    return this.options.pacing ? socket.pipe(new Pacer()) : socket;
  }

  // ---- stream mode (SSH): one connection; when it closes the session ends ----

  private async startStreamMode(): Promise<void> {
    let socket: net.Socket;
    try {
      socket = await this.dialDestination();
    } catch (err) {
      this.end(err instanceof DialError ? `Unable to start port forwarding: ${err.message}` : String(err));
      return;
    }
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    this.channel.data.pipe(socket);
    const source = this.toClient(socket);
    source.pipe(this.channel.data, { end: false });
    socket.on('error', () => {});
    // The destination closed: the session ends once the client has everything it sent.
    source.on('end', () => void this.endAfterFlush(''));
  }

  /** Let the client acknowledge what we already sent, then end the session. */
  private async endAfterFlush(reason: string): Promise<void> {
    // The client may be resuming meanwhile: what it has not acknowledged is resent when it is back.
    await this.channel.whenAcknowledged(5_000, { acrossReconnects: true });
    if (this.state === 'running') this.end(reason);
  }

  // ---- basic mode: one connection at a time, DisconnectToPort, redial on the next data ----

  private startBasicMode(): void {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.basicWrite(chunk).then(() => cb(), (err: unknown) => {
          this.logger.debug({ err: String(err) }, 'basic mode: dial failed');
          this.sendFlag(FlagValue.ConnectToPortError);
          cb();
        });
      },
    });
    this.channel.data.pipe(sink);
  }

  private async basicWrite(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      // Split at a pending DisconnectToPort mark so bytes before it go to the old connection only.
      const mark = this.basicDisconnectAt[0];
      const room = mark === undefined ? chunk.length - offset : Math.min(chunk.length - offset, mark - this.basicBytesConsumed);
      if (room <= 0) {
        this.applyBasicDisconnects();
        continue;
      }
      const part = chunk.subarray(offset, offset + room);
      const socket = await this.basicConnection();
      this.basicBytesConsumed += part.length;
      offset += part.length;
      if (!socket.write(part)) await new Promise((r) => socket.once('drain', r));
      this.applyBasicDisconnects();
    }
  }

  private applyBasicDisconnects(): void {
    while (this.basicDisconnectAt.length > 0 && this.basicDisconnectAt[0]! <= this.basicBytesConsumed) {
      this.basicDisconnectAt.shift();
      const socket = this.basicSocket;
      this.basicSocket = undefined;
      this.basicDial = undefined;
      socket?.end();
    }
  }

  private basicConnection(): Promise<net.Socket> {
    if (this.basicSocket && !this.basicSocket.destroyed && this.basicSocket.writable) return Promise.resolve(this.basicSocket);
    if (this.basicDial) return this.basicDial;
    const dialing = this.dialDestination().then((socket) => {
      this.basicSocket = socket;
      socket.on('error', () => {});
      // The destination's bytes flow to the client; a closed destination is redialled on the next data.
      this.toClient(socket).pipe(this.channel.data, { end: false });
      socket.on('close', () => {
        if (this.basicSocket === socket) {
          this.basicSocket = undefined;
          this.basicDial = undefined;
        }
      });
      return socket;
    });
    this.basicDial = dialing;
    dialing.catch(() => {
      if (this.basicDial === dialing) this.basicDial = undefined;
    });
    return dialing;
  }

  // ---- mux mode: smux server; each stream dials the destination ----

  private startMuxMode(): void {
    const keepAlive = agentUsesSmuxKeepAlive(this.options.agentVersion, this.clientVersion) ? (this.options.smuxKeepAlive ?? SMUX_KEEPALIVE) : false;
    const smux = new SmuxSession(this.channel.data, { role: 'server', keepAlive });
    this.smux = smux;
    smux.on('stream', (stream: SmuxStream) => void this.onMuxStream(stream));
    smux.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'agent smux error'));
    smux.on('close', () => {
      if (this.state === 'running') this.end('smux session closed (keep-alive timeout or protocol error)');
    });
  }

  private async onMuxStream(stream: SmuxStream): Promise<void> {
    let socket: net.Socket;
    try {
      socket = await this.dialDestination();
    } catch (err) {
      this.logger.debug({ err: String(err) }, 'mux: dial failed');
      this.sendFlag(FlagValue.ConnectToPortError);
      stream.destroy();
      return;
    }
    if (this.state !== 'running' || stream.destroyed) {
      socket.destroy();
      return;
    }
    // Like the agent's two io.Copy calls: when either direction ends, both connections close (SPEC §7).
    stream.pipe(socket); // client FIN -> flush to the destination, then close it
    this.toClient(socket).pipe(stream); // destination EOF -> flush to the client, then FIN
    stream.on('finish', () => {
      stream.destroy();
      socket.destroy();
    });
    socket.on('finish', () => socket.destroy());
    socket.on('error', () => stream.destroy());
    stream.on('error', () => socket.destroy());
    socket.on('close', (hadError: boolean) => {
      if (hadError) stream.destroy();
    });
    stream.on('close', () => {
      if (!socket.writableEnded) socket.end();
    });
  }

  private sendFlag(flag: number): void {
    if (this.state === 'running') this.channel.sendStreamMessage(PayloadType.Flag, encodeFlag(flag));
  }
}

function discard(): void {}

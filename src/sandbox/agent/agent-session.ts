import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../../logger.js';
import {
  ActionType,
  decodeHandshakeResponse,
  encodeHandshakeComplete,
  encodeHandshakeRequest,
  PayloadType,
  type LenientAgentMessage,
  type PortSessionProperties,
} from '../../protocol/index.js';
import { AgentDataChannel, NOT_READY, type AgentChannelStats, type AgentLink, type InputOutcome } from './agent-data-channel.js';
import { END_OF_SESSION_POLL_MS, END_OF_SESSION_WAIT_MS, HANDSHAKE_TIMEOUT_MS, portPluginMode, SMUX_DEFAULTS, smuxKeepAliveEnabled, type PortPluginMode } from './agent-policy.js';
import { DestinationGate } from './destination.js';
import type { ResolveDestination } from './dialer.js';
import { MuxPortSession } from './mux-port-session.js';
import { BasicPortSession, type PortSession, type PortSessionContext } from './port-session.js';

export interface AgentSessionOptions {
  link: AgentLink;
  agentVersion: string;
  properties: PortSessionProperties;
  resolveDestination: ResolveDestination;
  /** Read at dial time, so a fault can be switched on and off during a session. */
  refuseDestination?: () => boolean;
  /** The 1 ms sleep after each message (on, as the agent does); false for speed tests. */
  paced?: boolean;
  /** Time between HandshakeComplete and the plugin being ready, during which stream data is refused. */
  pluginStartDelayMs?: number;
  /** Override the smux keep-alive timing the agent uses when its rules turn keep-alive on (10 s / 30 s). */
  smuxKeepAlive?: { intervalMs: number; timeoutMs: number };
  /** Override the heartbeat timing (54 s pings, 60 s read deadline). */
  heartbeat?: { pingIntervalMs: number; pongWaitMs: number };
  random?: () => number;
  logger?: Logger;
}

/**
 * The reason an agent-ended session carries in the registry (`POST /_sandbox/sessions/<id>/agent-end`): the
 * session worker's port plugin exited (port.go Execute returns; sessionplugin.go then PrepareToCloseChannel
 * and Close). Its channel_closed Output is empty, as for any plugin that ends without an error.
 */
export const AGENT_END_REASON = 'the agent ended the session';

/*
 * One session on the emulated agent: sessionplugin.go Execute, then the port plugin (port.go).
 *
 *   handshaking --HandshakeResponse ok--> starting plugin --initialized--> running --plugin ends / cancel-->
 *   closing (≤ 2 s for acks: PrepareToCloseChannel) --> ended
 *
 * `end` (reason, output) is emitted once; the gateway then tells the client (channel_closed with `output`,
 * which is the reason unless `end()` said otherwise). `close()` is the service ending the session
 * (TerminateSession API, expiry, idle timeout): everything stops at once.
 */
type AgentState = 'idle' | 'handshaking' | 'starting' | 'running' | 'closing' | 'ended';

export class AgentSession extends EventEmitter {
  readonly channel: AgentDataChannel;
  readonly gate = new DestinationGate();
  clientVersion = '';
  mode: PortPluginMode | undefined;
  private state: AgentState = 'idle';
  private plugin: PortSession | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private handshakeStartedNs = 0n;
  private readonly options: AgentSessionOptions;
  private readonly logger: Logger;

  constructor(options: AgentSessionOptions) {
    super();
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.channel = new AgentDataChannel({
      link: options.link,
      onInput: (msg) => this.onInput(msg),
      onChannelClosed: () => void this.finish('channel_closed from the service'),
      ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
      ...(options.random ? { random: options.random } : {}),
      logger: this.logger,
    });
  }

  get stats(): AgentChannelStats {
    return this.channel.stats;
  }

  /** PerformHandshake: send HandshakeRequest and wait at most 15 s for the response. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'handshaking';
    this.handshakeStartedNs = process.hrtime.bigint();
    this.channel.sendStreamData(
      PayloadType.HandshakeRequest,
      encodeHandshakeRequest({
        AgentVersion: this.options.agentVersion,
        RequestedClientActions: [{ ActionType: ActionType.SessionType, ActionParameters: { SessionType: 'Port', Properties: this.options.properties } }],
      }),
    );
    this.handshakeTimer = setTimeout(
      () => void this.finish('Handshake timed out. Please ensure that you have the latest version of the session manager plugin.'),
      HANDSHAKE_TIMEOUT_MS,
    );
    this.handshakeTimer.unref();
  }

  /**
   * The agent ends the session on its own, as when its session worker's plugin exits (the worker cancelled, the
   * plugin done): the plugin stops, the data channel waits ≤ 2 s for acks (PrepareToCloseChannel), then `end`.
   * False when the session is already ending.
   */
  end(reason: string, output = reason): boolean {
    if (this.state === 'closing' || this.state === 'ended') return false;
    void this.finish(reason, output);
    return true;
  }

  /** A frame from the client, through the gateway. */
  deliver(frame: Buffer): void {
    this.channel.deliver(frame);
  }

  /** The service ends the session: stop at once. */
  close(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.plugin?.stop();
    this.gate.open();
    this.channel.close();
  }

  private onInput(msg: LenientAgentMessage): InputOutcome | Promise<InputOutcome> {
    switch (msg.payloadType) {
      case PayloadType.HandshakeResponse:
        return this.onHandshakeResponse(msg);
      case PayloadType.EncChallengeResponse:
        return undefined;
      default:
        // "Handshake still in progress, ignore stream data message": acknowledged and dropped.
        if (this.state === 'handshaking' || this.state === 'idle') return undefined;
        if (this.plugin === undefined || !this.plugin.ready) return NOT_READY;
        return this.plugin.handleInput(msg);
    }
  }

  private onHandshakeResponse(msg: LenientAgentMessage): InputOutcome {
    if (this.state !== 'handshaking') return undefined;
    let response;
    try {
      response = decodeHandshakeResponse(msg.payload);
    } catch (err) {
      // "Unmarshalling of HandshakeResponse message failed": not acknowledged; the handshake times out.
      return err as Error;
    }
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.clientVersion = response.ClientVersion;
    const failed = response.ProcessedClientActions.find((a) => a.ActionStatus !== 1);
    if (failed !== undefined) {
      void this.finish(`${failed.ActionType} failed on client with status ${failed.ActionStatus} error: ${failed.Error ?? ''}`);
      return undefined;
    }
    this.channel.sendStreamData(
      PayloadType.HandshakeComplete,
      encodeHandshakeComplete({ HandshakeTimeToComplete: Number(process.hrtime.bigint() - this.handshakeStartedNs), CustomerMessage: '' }),
    );
    this.state = 'starting';
    const delay = this.options.pluginStartDelayMs ?? 0;
    if (delay > 0) setTimeout(() => void this.startPlugin(), delay).unref();
    else queueMicrotask(() => void this.startPlugin());
    return undefined;
  }

  private destination(): { host: string; port: string } {
    const props = this.options.properties;
    const host = typeof props.host === 'string' && props.host ? props.host : 'localhost';
    return { host, port: String(props.portNumber ?? '') };
  }

  private async startPlugin(): Promise<void> {
    if (this.state !== 'starting') return;
    const mode = portPluginMode(this.options.agentVersion, this.clientVersion, typeof this.options.properties.type === 'string' ? this.options.properties.type : undefined);
    this.mode = mode;
    const { host, port } = this.destination();
    const ctx: PortSessionContext = {
      channel: this.channel,
      gate: this.gate,
      resolveDestination: this.options.resolveDestination,
      host,
      port,
      refuseDestination: this.options.refuseDestination ?? (() => false),
      paced: this.options.paced ?? true,
      cancel: () => void this.finish('TerminateSession flag from the client'),
      logger: this.logger,
    };
    const keepAlive = smuxKeepAliveEnabled(this.options.agentVersion, this.clientVersion)
      ? (this.options.smuxKeepAlive ?? { intervalMs: SMUX_DEFAULTS.keepAliveIntervalMs, timeoutMs: SMUX_DEFAULTS.keepAliveTimeoutMs })
      : false;
    const plugin: PortSession = mode === 'mux' ? new MuxPortSession(ctx, { keepAlive }) : new BasicPortSession(ctx, mode === 'basic');
    this.plugin = plugin;
    this.logger.debug({ mode, clientVersion: this.clientVersion, keepAlive: keepAlive !== false }, 'agent plugin starting');
    try {
      await plugin.initialize();
    } catch (err) {
      await this.finish((err as Error).message);
      return;
    }
    if (this.state !== 'starting') {
      plugin.stop();
      return;
    }
    this.state = 'running';
    const failure = await plugin.run();
    await this.finish(failure ?? '');
  }

  /** The plugin ended or the session was cancelled: PrepareToCloseChannel (≤ 2 s for acks), then end. */
  private async finish(reason: string, output = reason): Promise<void> {
    if (this.state === 'closing' || this.state === 'ended') return;
    this.state = 'closing';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.plugin?.stop();
    await this.channel.whenAllAcknowledged(END_OF_SESSION_WAIT_MS, END_OF_SESSION_POLL_MS);
    if (this.state !== 'closing') return;
    this.close();
    this.emit('end', reason, output);
  }
}

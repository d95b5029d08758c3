import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ReliableChannel, type ReliableChannelOptions, type Transport } from '../channel/index.js';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { agentMultiplexes, encodeFlag, FlagValue, PayloadType, type AgentMessage, type ChannelClosed, decodeFlag } from '../protocol/index.js';
import { connectDataChannel, describeStreamUrl } from './data-channel.js';
import { performClientHandshake, type HandshakeResult } from './handshake.js';
import { isRetryable, type SessionCredentials, type SsmApi, type StartSessionInput } from './ssm-api.js';
import type { SessionStatus } from './status.js';

export interface BridgeSessionOptions {
  api: SsmApi;
  start: StartSessionInput;
  logger?: Logger;
  /** Stable per process (SPEC §2). */
  clientId?: string;
  /** Total time to keep trying to resume after a drop; 0 disables resume. Default 10 minutes. */
  resumeTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** WebSocket silence detection (SPEC §2 notes the official 5-minute ping is far too slow). */
  pingIntervalMs?: number;
  silenceTimeoutMs?: number;
  channel?: Omit<ReliableChannelOptions, 'role'>;
}

/** BridgeSession.open: a session already started (its StartSession answer) instead of the StartSession input. */
export type BridgeSessionOpenOptions = Omit<BridgeSessionOptions, 'start'> & { credentials: SessionCredentials };

const DEFAULT_RESUME_TIMEOUT_MS = 10 * 60_000;
const FIRST_RETRY_DELAY_MS = 100;
const MAX_RETRY_DELAY_MS = 5_000;
/** Bound of one resume step (ResumeSession, then the WebSocket open); doubles after each step that hit it. */
const FIRST_STEP_TIMEOUT_MS = 5_000;
const MAX_STEP_TIMEOUT_MS = 30_000;
const TERMINATE_TIMEOUT_MS = 5_000;
/** A resumed connection that stays up this long ends the outage (its attempt count and --resume-timeout budget). */
const STABLE_CONNECTION_MS = 3_000;
/** The least time between two dials of the data channel, whatever the backoff says. */
const MIN_DIAL_INTERVAL_MS = 200;
/** A StartSession answers within a couple of seconds; past this the endpoint or the network is broken. */
const START_SESSION_TIMEOUT_MS = 30_000;
const PROCESS_CLIENT_ID = randomUUID();

/*
 * State machine (transitions only in setState):
 *
 *   open --transport lost--> resuming --attached--> open
 *     |                         |
 *     +--terminate()/fatal------+--timeout/no token--> closed
 */
type SessionState = 'open' | 'resuming' | 'closing' | 'closed';

/**
 * One Session Manager session: StartSession, the data channel, the handshake, and transparent resume.
 * Output bytes flow through `data`. Events: `status` (SessionStatus), `flag` (number), `closed` (error?).
 */
export class BridgeSession extends EventEmitter {
  readonly sessionId: string;
  readonly channel: ReliableChannel;
  readonly handshake: HandshakeResult;
  private state: SessionState = 'open';
  private readonly api: SsmApi;
  private readonly logger: Logger;
  private readonly options: Omit<BridgeSessionOptions, 'start'>;
  private readonly clientId: string;
  private transport: Transport | undefined;
  private readonly closedPromise: Promise<BridgeError | undefined>;
  private resolveClosed!: (err: BridgeError | undefined) => void;
  private resumeAbort = new AbortController();
  /** The outage being resumed: it lasts until a resumed connection has stayed up for STABLE_CONNECTION_MS. */
  private outage: { startedMs: number; attempts: number; lastDialMs: number } | undefined;
  private stableTimer: NodeJS.Timeout | undefined;

  /** StartSession, connect, handshake. Rejects with a BridgeError; nothing is left open on failure. */
  static async start(options: BridgeSessionOptions): Promise<BridgeSession> {
    const { start, ...rest } = options;
    // Bounded: an endpoint that accepts the connection and never answers would hang the CLI silently.
    const credentials = await withDeadline(undefined, START_SESSION_TIMEOUT_MS, 'StartSession', (signal) => options.api.startSession(start, { signal }));
    return BridgeSession.open({ ...rest, credentials });
  }

  /**
   * Connect and handshake a session someone else started (`ssm-bridge plugin`: the AWS CLI called StartSession).
   * Rejects with a BridgeError, after TerminateSession: nothing is left open on failure.
   */
  static async open(options: BridgeSessionOpenOptions): Promise<BridgeSession> {
    const logger = options.logger ?? silentLogger;
    const { credentials } = options;
    logger.debug({ sessionId: credentials.sessionId, gateway: describeStreamUrl(credentials.streamUrl) }, 'session started');
    const channel = new ReliableChannel({ role: 'client', ...options.channel });
    const handshake = performClientHandshake(channel, { timeoutMs: options.handshakeTimeoutMs ?? 30_000 });
    const clientId = options.clientId ?? PROCESS_CLIENT_ID;
    // Events that arrive between HandshakeComplete and the session object (the same socket read can carry
    // a channel_closed right behind it) are recorded here and replayed, never lost.
    const early = new EarlyEvents(channel);
    let transport: Transport | undefined;
    // A connection closed before the handshake completed (a gateway that refused the token closes 1008) is not
    // resumable yet: fail the start now, with the code and reason, instead of a handshake timeout 30 s later.
    let onEarlyClose: ((code: number, reason: string) => void) | undefined;
    const closedDuringStart = new Promise<never>((_, reject) => {
      onEarlyClose = (code, reason) =>
        reject(new BridgeError(ErrorCode.SERVICE_ERROR, `the data channel at ${describeStreamUrl(credentials.streamUrl)} closed before the handshake completed (WebSocket ${code}${reason ? ` ${reason}` : ''}); try again, and check the target's SSM agent if it persists`));
      channel.once('transport-close', onEarlyClose);
    });
    closedDuringStart.catch(() => {});
    try {
      transport = await connectDataChannel(credentials.streamUrl, credentials.tokenValue, transportOptions(options, clientId));
      channel.attach(transport);
      const result = await Promise.race([handshake, closedDuringStart]);
      channel.off('transport-close', onEarlyClose!);
      const session = new BridgeSession(options, credentials, channel, transport, result, clientId);
      early.replayInto(session);
      return session;
    } catch (err) {
      channel.off('transport-close', onEarlyClose!);
      early.stop();
      handshake.catch(() => {});
      channel.close();
      transport?.close();
      // Bounded like every call on the way out: a dead network must not hold the failure's report.
      await withDeadline(undefined, TERMINATE_TIMEOUT_MS, 'TerminateSession', (signal) => options.api.terminateSession(credentials.sessionId, { signal })).catch(() => {});
      throw err;
    }
  }

  private constructor(options: Omit<BridgeSessionOptions, 'start'>, credentials: SessionCredentials, channel: ReliableChannel, transport: Transport, handshake: HandshakeResult, clientId: string) {
    super();
    this.options = options;
    this.api = options.api;
    this.logger = options.logger ?? silentLogger;
    this.sessionId = credentials.sessionId;
    this.channel = channel;
    this.transport = transport;
    this.handshake = handshake;
    this.clientId = clientId;
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    channel.on('transport-close', this.onTransportClose);
    channel.on('channel-closed', this.onChannelClosed);
    channel.on('stream-message', this.onStreamMessage);
    channel.on('close', this.onChannelClose);
    // Rate-limited: a peer sending garbage must not turn our stderr into a flood (one line per 5 s at most).
    const malformedWarning = rateLimited(5_000, (err: Error, suppressed: number) =>
      this.logger.warn({ err: err.message, ...(suppressed > 0 ? { suppressed } : {}) }, suppressed > 0 ? `dropped malformed messages from the service (${suppressed + 1} since the last warning)` : 'dropped a malformed message from the service'),
    );
    channel.on('malformed', malformedWarning);
    // Once per type: the agent and the official client ignore types they do not know, and so do we.
    channel.on('unknown-type', (messageType: string) => this.logger.debug({ messageType }, 'ignoring messages of a type we do not know'));
    transport.on('silence', this.onSilence);
    this.emitStatus({ type: 'connected', sessionId: this.sessionId, agentVersion: handshake.agentVersion });
  }

  /** Deliver a channel event recorded before this object existed. */
  replayEarlyEvent(name: EarlyEventName, args: unknown[]): void {
    switch (name) {
      case 'channel-closed':
        this.onChannelClosed(args[0] as ChannelClosed);
        return;
      case 'stream-message':
        this.onStreamMessage(args[0] as AgentMessage);
        return;
      case 'transport-close':
        this.onTransportClose(args[0] as number, args[1] as string);
        return;
      case 'close':
        this.onChannelClose(args[0] as BridgeError | undefined);
        return;
    }
  }

  /** Output bytes of the session, both ways. */
  get data(): Duplex {
    return this.channel.data;
  }

  /** Multiplexed port forwarding (smux) applies: a LocalPortForwarding session with a newer agent. */
  get multiplexed(): boolean {
    return this.handshake.properties.type === 'LocalPortForwarding' && agentMultiplexes(this.handshake.agentVersion);
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Resolves when the session has closed, with the error that closed it (undefined for a clean end). */
  closed(): Promise<BridgeError | undefined> {
    return this.closedPromise;
  }

  sendFlag(flag: FlagValue): void {
    if (this.state === 'closed') return;
    this.channel.sendStreamMessage(PayloadType.Flag, encodeFlag(flag));
  }

  /**
   * Resolves once everything written so far has been acknowledged by the service (true), or after
   * `timeoutMs` or the session's end (false). Waits through resumes, unlike terminate()'s own short flush
   * (which stops resuming first): call this before terminate() when the bytes matter, as at stdin EOF.
   */
  flushed(timeoutMs: number): Promise<boolean> {
    if (this.state === 'closed') return Promise.resolve(false);
    return this.channel.whenAcknowledged(timeoutMs, { acrossReconnects: true });
  }

  /**
   * End the session on purpose: the TerminateSession flag to the agent, then the TerminateSession API call.
   * Waits at most `flushTimeoutMs` for data already written to be acknowledged. With `reason`, the session
   * closes with that error (a layer above it failed) instead of a clean end.
   */
  async terminate(flushTimeoutMs = 2_000, reason?: BridgeError): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') {
      await this.closedPromise;
      return;
    }
    const wasOpen = this.state === 'open';
    this.setState('closing');
    this.resumeAbort.abort();
    if (wasOpen) {
      try {
        this.sendFlag(FlagValue.TerminateSession);
        await this.channel.whenAcknowledged(flushTimeoutMs);
      } catch {
        // the channel may already be gone; the API call below still ends the session
      }
    }
    try {
      // Bounded: on a dead network the call would hang, and so would Ctrl-C.
      await withDeadline(undefined, TERMINATE_TIMEOUT_MS, 'TerminateSession', (signal) => this.api.terminateSession(this.sessionId, { signal }));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'TerminateSession failed');
    }
    // `reason`: we end the session because something above it broke (a malformed smux frame): say so.
    this.finish(reason);
  }

  /**
   * We give the session up (resume disabled or failed): it would otherwise stay open on the service until its
   * idle timeout. TerminateSession first (bounded), then the session closes with `error`.
   */
  private async abandon(error: BridgeError): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.setState('closing');
    this.resumeAbort.abort();
    try {
      await withDeadline(undefined, TERMINATE_TIMEOUT_MS, 'TerminateSession', (signal) => this.api.terminateSession(this.sessionId, { signal }));
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'TerminateSession after giving up failed');
    }
    this.finish(error);
  }

  private setState(next: SessionState): void {
    switch (next) {
      case 'open':
      case 'resuming':
      case 'closing':
        if (this.state === 'closed') return;
        this.state = next;
        return;
      case 'closed':
        this.state = 'closed';
        return;
    }
  }

  private finish(reason: BridgeError | undefined): void {
    if (this.state === 'closed') return;
    this.setState('closed');
    this.resumeAbort.abort();
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.channel.off('close', this.onChannelClose);
    const error = this.dataLost(reason) ?? reason;
    // A session the service ended (channel_closed, the agent's TerminateSession flag, no token to resume) ends
    // `data` instead of destroying it: what already arrived was acknowledged, so the local side must still be
    // able to read it. Only a broken channel (protocol error, resume timeout) discards it. With data lost, a
    // byte stream keeps what arrived before the gap; smux streams are reset (which of them lost bytes is unknown).
    const endCleanly = error?.code === ErrorCode.SESSION_TERMINATED || (error?.code === ErrorCode.DATA_LOST && !this.multiplexed);
    this.channel.close(endCleanly ? undefined : error);
    // close() destroys `data` with the error when someone listens (smux), but 'error' is emitted on the next
    // tick; when finish() runs inside a microtask (the resume loop: no token, timeout) the promise chain behind
    // closed() detaches those listeners first (smux.close()), and the unheard error crashed the process (exit 1
    // instead of 6 or 7). The reason travels through closed(); this listener only keeps the emission harmless.
    this.channel.data.on('error', ignoreError);
    const transport = this.channel.detach() ?? this.transport;
    transport?.close();
    this.transport = undefined;
    this.emitStatus(error ? { type: 'closed', sessionId: this.sessionId, error } : { type: 'closed', sessionId: this.sessionId });
    this.emit('closed', error);
    this.resolveClosed(error);
  }

  /**
   * The end of a session with a gap in what the agent sent (messages beyond it arrived, the gap never did): the
   * agent waits only 2 s for acknowledgements at the end (SPEC §5), so this is data lost, never a clean end.
   */
  private dataLost(reason: BridgeError | undefined): BridgeError | undefined {
    if (reason !== undefined && reason.code !== ErrorCode.SESSION_TERMINATED) return undefined;
    const gap = this.channel.receiveGap;
    if (gap === undefined || gap.missingMessages <= 0) return undefined;
    const how = reason ? reason.message.replace(/^session \S+ /, '') : 'was terminated';
    const n = gap.missingMessages;
    return new BridgeError(
      ErrorCode.DATA_LOST,
      `session ${this.sessionId} ${how}, but ${n} message${n === 1 ? '' : 's'} (up to ${n} KiB) the agent had sent never arrived; ` +
        'the agent waits only 2 s for them at the end of a session, so those bytes are lost',
      { cause: reason },
    );
  }

  private emitStatus(status: SessionStatus): void {
    this.emit('status', status);
  }

  private readonly onSilence = (silenceMs: number): void => {
    this.logger.warn({ silenceMs }, 'no traffic from the service; reconnecting');
  };

  /** The reason the service gave in channel_closed (its Output), once it has closed the session. */
  serviceCloseReason: string | undefined;

  private readonly onChannelClosed = (closed: ChannelClosed): void => {
    this.serviceCloseReason = closed.Output ?? '';
    // We asked for the end (terminate()): the service confirming it is not an error.
    if (this.state === 'closing') {
      this.finish(undefined);
      return;
    }
    const reason = closed.Output ? `: ${closed.Output}` : '';
    this.finish(new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${this.sessionId} was closed by the service${reason}`));
  };

  private readonly onChannelClose = (err?: BridgeError): void => {
    this.finish(err);
  };

  private readonly onStreamMessage = (msg: AgentMessage): void => {
    if (msg.payloadType !== PayloadType.Flag) return;
    let flag: number;
    try {
      flag = decodeFlag(msg.payload);
    } catch {
      return;
    }
    if (flag === FlagValue.TerminateSession) {
      this.finish(new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${this.sessionId} was terminated by the agent`));
      return;
    }
    this.emit('flag', flag);
  };

  private readonly onTransportClose = (code: number, reason: string): void => {
    if (this.state !== 'open') return;
    this.transport?.removeListener('silence', this.onSilence);
    this.transport = undefined;
    const resumeTimeoutMs = this.options.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS;
    this.emitStatus({ type: 'disconnected', sessionId: this.sessionId, reason: `WebSocket closed (${code}${reason ? ` ${reason}` : ''})` });
    if (resumeTimeoutMs <= 0) {
      void this.abandon(new BridgeError(ErrorCode.RESUME_FAILED, 'the connection to the service dropped and resume is disabled (--resume-timeout 0)'));
      return;
    }
    this.setState('resuming');
    void this.resume(resumeTimeoutMs);
  };

  /**
   * Call ResumeSession and reconnect, with exponential backoff and jitter, bounded by total time. A resume is
   * done only once the service proved alive on the new connection (a message, an ack, or the pong to a ping sent
   * after OpenDataChannelInput); and until that connection has also stayed up for STABLE_CONNECTION_MS, a new
   * drop continues the same outage: its attempt count, backoff and --resume-timeout budget. So a gateway that
   * accepts and then drops every connection meets backoff and the timeout, not a storm of ResumeSession calls.
   */
  private async resume(resumeTimeoutMs: number): Promise<void> {
    if (this.stableTimer) clearTimeout(this.stableTimer);
    const outage = (this.outage ??= { startedMs: Date.now(), attempts: 0, lastDialMs: 0 });
    const abort = (this.resumeAbort = new AbortController());
    const remainingMs = (): number => Math.max(1, resumeTimeoutMs - (Date.now() - outage.startedMs));
    let stepTimeoutMs = FIRST_STEP_TIMEOUT_MS;
    let lastError: unknown;
    for (;;) {
      if (this.state !== 'resuming' || abort.signal.aborted) return;
      const attempt = ++outage.attempts;
      const elapsed = Date.now() - outage.startedMs;
      if (elapsed >= resumeTimeoutMs) break;
      const backoff = attempt === 1 ? 0 : Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** (attempt - 2));
      const sinceDialMs = Date.now() - outage.lastDialMs;
      const delayMs = Math.min(Math.max(Math.round(backoff * (0.5 + Math.random() / 2)), MIN_DIAL_INTERVAL_MS - sinceDialMs), Math.max(0, resumeTimeoutMs - elapsed));
      this.emitStatus({ type: 'resuming', sessionId: this.sessionId, attempt, delayMs: Math.max(0, delayMs) });
      if (delayMs > 0) {
        try {
          await sleep(delayMs, undefined, { signal: abort.signal });
        } catch {
          return;
        }
      }
      const attemptStartedMs = Date.now();
      try {
        // Each step is bounded, and by what is left of --resume-timeout: the network that dropped the WebSocket
        // often took the SDK's keep-alive connection with it, and a request on that socket never returns.
        const credentials = await withDeadline(abort.signal, Math.min(stepTimeoutMs, remainingMs()), 'ResumeSession', (signal) => this.api.resumeSession(this.sessionId, { signal }));
        if (credentials === undefined) {
          this.finish(new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${this.sessionId} ended while disconnected (terminated or timed out); the service returned no token to resume it`));
          return;
        }
        outage.lastDialMs = Date.now();
        const transport = await connectDataChannel(credentials.streamUrl, credentials.tokenValue, {
          ...transportOptions(this.options, this.clientId),
          connectTimeoutMs: Math.min(stepTimeoutMs, remainingMs()),
        });
        if (this.state !== 'resuming' || abort.signal.aborted) {
          transport.close();
          return;
        }
        const messagesResent = this.channel.bufferedMessages;
        this.channel.attach(transport);
        if (!(await transport.whenAlive(Math.min(stepTimeoutMs, remainingMs())))) {
          // Accepted, then closed or silent: not a resume. The loop goes on with its backoff.
          this.channel.detach();
          transport.terminate();
          throw new BridgeError(ErrorCode.SERVICE_ERROR, 'the new data channel connection closed or stayed silent before the service answered');
        }
        if (this.state !== 'resuming' || abort.signal.aborted) return;
        this.transport = transport;
        transport.on('silence', this.onSilence);
        this.setState('open');
        this.emitStatus({ type: 'resumed', sessionId: this.sessionId, downtimeMs: Date.now() - outage.startedMs, messagesResent, attempts: attempt });
        this.stableTimer = setTimeout(() => {
          if (this.outage === outage) this.outage = undefined;
        }, STABLE_CONNECTION_MS);
        this.stableTimer.unref();
        return;
      } catch (err) {
        lastError = err;
        if (err instanceof BridgeError && !isRetryable(err)) {
          this.finish(err);
          return;
        }
        // A step that ran into its bound may be a slow link rather than a dead socket: allow the next more.
        if (Date.now() - attemptStartedMs >= stepTimeoutMs) stepTimeoutMs = Math.min(MAX_STEP_TIMEOUT_MS, stepTimeoutMs * 2);
        this.logger.debug({ attempt, err: (err as Error).message }, 'resume attempt failed');
      }
    }
    const last = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
    await this.abandon(new BridgeError(ErrorCode.RESUME_FAILED, `could not resume session ${this.sessionId} within ${Math.round(resumeTimeoutMs / 1000)} s${last}`, { cause: lastError }));
  }
}

type EarlyEventName = 'channel-closed' | 'stream-message' | 'transport-close' | 'close';
const EARLY_EVENTS: EarlyEventName[] = ['channel-closed', 'stream-message', 'transport-close', 'close'];

/** Records a channel's events until the session that handles them exists. */
class EarlyEvents {
  private readonly events: Array<[EarlyEventName, unknown[]]> = [];
  private readonly listeners = new Map<EarlyEventName, (...args: unknown[]) => void>();
  private readonly channel: ReliableChannel;

  constructor(channel: ReliableChannel) {
    this.channel = channel;
    for (const name of EARLY_EVENTS) {
      const listener = (...args: unknown[]): void => {
        this.events.push([name, args]);
      };
      this.listeners.set(name, listener);
      channel.on(name, listener);
    }
  }

  stop(): void {
    for (const [name, listener] of this.listeners) this.channel.off(name, listener);
    this.listeners.clear();
  }

  replayInto(session: BridgeSession): void {
    this.stop();
    for (const [name, args] of this.events.splice(0)) {
      if (session.isClosed) return;
      session.replayEarlyEvent(name, args);
    }
  }
}

/*
 * Silence detection (SPEC §2: the official client pings every 5 minutes). Anything received counts: data,
 * acks, pongs; a paused (backpressured) socket never counts as silent. So 5 s of nothing at all, pings
 * going out every second, means a dead path (a lost NAT mapping, a frozen peer); TCP would only notice after
 * minutes. A false alarm costs one transparent resume; a late one stalls every connection: detection takes
 * 5–6 s (it was 10–12 s with 2 s / 10 s).
 */
const DEFAULT_PING_INTERVAL_MS = 1_000;
const DEFAULT_SILENCE_TIMEOUT_MS = 5_000;

function transportOptions(options: Omit<BridgeSessionOptions, 'start'>, clientId: string) {
  return {
    clientId,
    // Resolved at each connect: every resume signs its upgrade with the credentials of that moment.
    ...(options.api.upgradeSigning ? { signing: options.api.upgradeSigning } : {}),
    ...(options.api.endpointUrl ? { endpointUrl: options.api.endpointUrl } : {}),
    pingIntervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
    silenceTimeoutMs: options.silenceTimeoutMs ?? DEFAULT_SILENCE_TIMEOUT_MS,
  };
}

function ignoreError(): void {}

/** Call `log` at most once per `intervalMs`; it gets how many calls were suppressed since the last one. */
export function rateLimited<T>(intervalMs: number, log: (value: T, suppressed: number) => void): (value: T) => void {
  let lastMs = -Infinity;
  let suppressed = 0;
  return (value: T): void => {
    const now = Date.now();
    if (now - lastMs < intervalMs) {
      suppressed++;
      return;
    }
    lastMs = now;
    log(value, suppressed);
    suppressed = 0;
  };
}

/**
 * Run `call` with a signal that fires after `timeoutMs` (reason: a TIMEOUT BridgeError) or with `parent`;
 * settle when either the call or the signal does, so an implementation that ignores the signal cannot hang us.
 */
async function withDeadline<T>(parent: AbortSignal | undefined, timeoutMs: number, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(parent!.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new BridgeError(ErrorCode.TIMEOUT, `${what} got no answer within ${formatSeconds(timeoutMs)}; check --endpoint-url, the region and the network`)),
    timeoutMs,
  );
  try {
    return await new Promise<T>((resolve, reject) => {
      const signal = controller.signal;
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      call(signal).then(resolve, reject);
    });
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}

function formatSeconds(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 100) / 10} s`;
}

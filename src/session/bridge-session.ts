import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ReliableChannel, type ReliableChannelOptions, type Transport } from '../channel/index.js';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { encodeFlag, portPluginMode, FlagValue, PayloadType, type AgentMessage, type ChannelClosed, decodeFlag } from '../protocol/index.js';
import { connectDataChannel, describeStreamUrl } from './data-channel.js';
import { performClientHandshake, type HandshakeResult } from './handshake.js';
import { isRetryable, type SessionCredentials, type SsmApi, type StartSessionInput } from './ssm-api.js';
import { RetryPolicy } from './resume-policy.js';
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
  /** Aborting it terminates the session, also while it starts (the start then rejects, after TerminateSession). */
  signal?: AbortSignal;
}

/** BridgeSession.open: a session already started (its StartSession answer) instead of the StartSession input. */
export type BridgeSessionOpenOptions = Omit<BridgeSessionOptions, 'start'> & { credentials: SessionCredentials };

const DEFAULT_RESUME_TIMEOUT_MS = 10 * 60_000;
/** Bound of one resume step (ResumeSession, then the WebSocket open); doubles after each step that hit it. */
const FIRST_STEP_TIMEOUT_MS = 5_000;
const MAX_STEP_TIMEOUT_MS = 30_000;
const TERMINATE_TIMEOUT_MS = 5_000;
/** A StartSession answers within a couple of seconds; past this the endpoint or the network is broken. */
const START_SESSION_TIMEOUT_MS = 30_000;
const PROCESS_CLIENT_ID = randomUUID();

/*
 * State machine (transitions only in `transition`, which runs each state's entry actions):
 *
 *   starting --StartSession answered--> handshaking --HandshakeComplete--> open <--resumed-- resuming
 *      |                                    |                               |  --transport lost-->  |
 *      +------------------------------------+------------ terminate() ---> closing ----------------+
 *      +---- start failed / service ended / resume gave up / fatal -----------------------------> closed
 */
export type SessionState = 'starting' | 'handshaking' | 'open' | 'resuming' | 'closing' | 'closed';

/**
 * One Session Manager session: StartSession (or a session someone else started), the data channel, the
 * handshake, and transparent resume. Built before it connects, so no channel event can arrive before its
 * listener. Output bytes flow through `data`. Events: `status` (SessionStatus), `flag` (number), `closed` (error?).
 */
export class BridgeSession extends EventEmitter {
  readonly channel: ReliableChannel;
  private state: SessionState = 'starting';
  private readonly api: SsmApi;
  private readonly logger: Logger;
  private readonly options: Omit<BridgeSessionOptions, 'start'>;
  private readonly startInput: StartSessionInput | undefined;
  private readonly clientId: string;
  private credentials: SessionCredentials | undefined;
  private handshakeResult: HandshakeResult | undefined;
  private transport: Transport | undefined;
  private readonly closedPromise: Promise<BridgeError | undefined>;
  private resolveClosed!: (err: BridgeError | undefined) => void;
  /** Aborts the start (StartSession, connect, handshake) and any resume in progress. */
  private abortWork = new AbortController();
  /** Rejected when the start cannot complete for a reason a channel event carries (see onTransportClose). */
  private failStart: ((err: BridgeError) => void) | undefined;
  private readonly retry: RetryPolicy;
  /** The error the session closed with, once closed. */
  private closeError: BridgeError | undefined;

  /** StartSession, connect, handshake. Rejects with a BridgeError; nothing is left open on failure. */
  static async start(options: BridgeSessionOptions): Promise<BridgeSession> {
    const session = new BridgeSession(options);
    await session.connect();
    return session;
  }

  /**
   * Connect and handshake a session someone else started (`ssm-bridge plugin`: the AWS CLI called StartSession).
   * Rejects with a BridgeError, after TerminateSession: nothing is left open on failure.
   */
  static async open(options: BridgeSessionOpenOptions): Promise<BridgeSession> {
    const session = new BridgeSession(options);
    await session.connect();
    return session;
  }

  constructor(options: BridgeSessionOptions | BridgeSessionOpenOptions) {
    super();
    const { start, credentials, ...rest } = options as BridgeSessionOptions & Partial<BridgeSessionOpenOptions>;
    this.options = rest;
    this.startInput = start;
    this.credentials = credentials;
    this.api = options.api;
    this.logger = options.logger ?? silentLogger;
    this.clientId = options.clientId ?? PROCESS_CLIENT_ID;
    this.retry = new RetryPolicy({ budgetMs: options.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS });
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    this.channel = new ReliableChannel({ role: 'client', ...options.channel });
    this.channel.on('transport-close', this.onTransportClose);
    this.channel.on('channel-closed', this.onChannelClosed);
    this.channel.on('stream-message', this.onStreamMessage);
    this.channel.on('close', this.onChannelClose);
    // Rate-limited: a peer sending garbage must not turn our stderr into a flood (one line per 5 s at most).
    const malformedWarning = rateLimited(5_000, (err: Error, suppressed: number) =>
      this.logger.warn({ err: err.message, ...(suppressed > 0 ? { suppressed } : {}) }, suppressed > 0 ? `dropped malformed messages from the service (${suppressed + 1} since the last warning)` : 'dropped a malformed message from the service'),
    );
    this.channel.on('malformed', malformedWarning);
    // Once per type: the agent and the official client ignore types they do not know, and so do we.
    this.channel.on('unknown-type', (messageType: string) => this.logger.debug({ messageType }, 'ignoring messages of a type we do not know'));
    const signal = options.signal;
    if (signal) {
      const onAbort = (): void => void this.terminate();
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        void this.closedPromise.then(() => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  /**
   * StartSession (unless the session was given), connect and handshake. Rejects with a BridgeError after
   * TerminateSession, leaving nothing open; resolves once the session is open (or, if the service ended it in
   * the same breath as the handshake, closed: `closed()` then tells why).
   */
  async connect(): Promise<void> {
    if (this.state !== 'starting') throw new BridgeError(ErrorCode.CHANNEL_CLOSED, 'this session has already been connected');
    const signal = this.abortWork.signal;
    const handshake = performClientHandshake(this.channel, { timeoutMs: this.options.handshakeTimeoutMs ?? 30_000 });
    handshake.catch(() => {});
    const failed = new Promise<never>((_, reject) => (this.failStart = reject));
    failed.catch(() => {});
    let transport: Transport | undefined;
    try {
      // Bounded: an endpoint that accepts the connection and never answers would hang the CLI silently.
      this.credentials ??= await withDeadline(signal, START_SESSION_TIMEOUT_MS, 'StartSession', (s) => this.api.startSession(this.startInput!, { signal: s }));
      this.transition('handshaking');
      const credentials = this.credentials;
      transport = await raceAbort(signal, connectDataChannel(credentials.streamUrl, credentials.tokenValue, transportOptions(this.options, this.clientId)));
      this.transport = transport;
      this.channel.attach(transport);
      this.handshakeResult = await raceAbort(signal, Promise.race([handshake, failed]));
      this.failStart = undefined;
      // The same socket read can carry a channel_closed right behind HandshakeComplete: already closed then.
      if ((this.state as SessionState) === 'handshaking') this.transition('open');
    } catch (err) {
      this.failStart = undefined;
      const error = this.closeError ?? (err instanceof BridgeError ? err : new BridgeError(ErrorCode.SERVICE_ERROR, (err as Error).message, { cause: err }));
      this.channel.close();
      transport?.close();
      // Bounded like every call on the way out: a dead network must not hold the failure's report.
      if (this.credentials) await withDeadline(undefined, TERMINATE_TIMEOUT_MS, 'TerminateSession', (s) => this.api.terminateSession(this.credentials!.sessionId, { signal: s })).catch(() => {});
      this.transition('closed', error);
      throw error;
    }
  }

  /** The session's id; empty until StartSession has answered. */
  get sessionId(): string {
    return this.credentials?.sessionId ?? '';
  }

  /** What the handshake told us (agent version, session type, properties); only once the session opened. */
  get handshake(): HandshakeResult {
    if (this.handshakeResult === undefined) throw new BridgeError(ErrorCode.CHANNEL_CLOSED, `session ${this.sessionId || '(starting)'} has not completed its handshake`);
    return this.handshakeResult;
  }

  get currentState(): SessionState {
    return this.state;
  }

  /** Output bytes of the session, both ways. */
  get data(): Duplex {
    return this.channel.data;
  }

  /** Multiplexed port forwarding (smux) applies: a LocalPortForwarding session with a newer agent. */
  get multiplexed(): boolean {
    return this.handshakeResult !== undefined && portPluginMode(this.handshakeResult) === 'multiplexed';
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
   * closes with that error (a layer above it failed) instead of a clean end. During the start: aborts it.
   */
  async terminate(flushTimeoutMs = 2_000, reason?: BridgeError): Promise<void> {
    if (this.state === 'starting' || this.state === 'handshaking') {
      // connect() sees the abort, calls TerminateSession once the session id is known, and closes.
      this.abortWork.abort(reason ?? new BridgeError(ErrorCode.CHANNEL_CLOSED, 'the session was terminated while it started'));
      await this.closedPromise;
      return;
    }
    if (this.state === 'closed' || this.state === 'closing') {
      await this.closedPromise;
      return;
    }
    const wasOpen = this.state === 'open';
    this.transition('closing');
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
    this.transition('closed', reason);
  }

  /**
   * We give the session up (resume disabled or failed): it would otherwise stay open on the service until its
   * idle timeout. TerminateSession first (bounded), then the session closes with `error`.
   */
  private async abandon(error: BridgeError): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.transition('closing');
    try {
      await withDeadline(undefined, TERMINATE_TIMEOUT_MS, 'TerminateSession', (signal) => this.api.terminateSession(this.sessionId, { signal }));
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'TerminateSession after giving up failed');
    }
    this.transition('closed', error);
  }

  /** The one place the state changes; each state's entry actions follow it. */
  private transition(next: SessionState, error?: BridgeError): void {
    if (this.state === 'closed' || this.state === next) return;
    const previous = this.state;
    this.state = next;
    switch (next) {
      case 'starting':
        return;
      case 'handshaking':
        this.logger.debug({ sessionId: this.sessionId, gateway: describeStreamUrl(this.credentials!.streamUrl) }, 'session started');
        return;
      case 'open':
        if (previous === 'handshaking') {
          this.transport?.on('silence', this.onSilence);
          this.emitStatus({ type: 'connected', sessionId: this.sessionId, agentVersion: this.handshake.agentVersion });
        }
        return;
      case 'resuming':
        void this.resume();
        return;
      case 'closing':
        this.abortWork.abort();
        return;
      case 'closed':
        this.enterClosed(error);
        return;
    }
  }

  private enterClosed(reason: BridgeError | undefined): void {
    this.abortWork.abort();
    this.channel.off('close', this.onChannelClose);
    const error = this.dataLost(reason) ?? reason;
    this.closeError = error;
    this.failStart?.(error ?? new BridgeError(ErrorCode.CHANNEL_CLOSED, `session ${this.sessionId} closed while it started`));
    // A session the service ended (channel_closed, the agent's TerminateSession flag, no token to resume) ends
    // `data` instead of destroying it: what already arrived was acknowledged, so the local side must still be
    // able to read it. Only a broken channel (protocol error, resume timeout) discards it. With data lost, a
    // byte stream keeps what arrived before the gap; smux streams are reset (which of them lost bytes is unknown).
    const endCleanly = error?.code === ErrorCode.SESSION_TERMINATED || (error?.code === ErrorCode.DATA_LOST && !this.multiplexed);
    this.channel.close(endCleanly ? undefined : error);
    // close() destroys `data` with the error when someone listens (smux), but 'error' is emitted on the next
    // tick; when this runs inside a microtask (the resume loop: no token, timeout) the promise chain behind
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
      this.transition('closed');
      return;
    }
    const reason = closed.Output ? `: ${closed.Output}` : '';
    this.transition('closed', new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${this.sessionId} was closed by the service${reason}`));
  };

  private readonly onChannelClose = (err?: BridgeError): void => {
    this.transition('closed', err);
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
      this.transition('closed', new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${this.sessionId} was terminated by the agent`));
      return;
    }
    this.emit('flag', flag);
  };

  private readonly onTransportClose = (code: number, reason: string): void => {
    const how = `WebSocket ${code}${reason ? ` ${reason}` : ''}`;
    if (this.state === 'handshaking') {
      // Closed before the handshake completed (a gateway that refused the token closes 1008): not resumable yet;
      // fail the start now, with the code and reason, instead of a handshake timeout 30 s later.
      this.failStart?.(
        new BridgeError(ErrorCode.SERVICE_ERROR, `the data channel at ${describeStreamUrl(this.credentials!.streamUrl)} closed before the handshake completed (${how}); try again, and check the target's SSM agent if it persists`),
      );
      return;
    }
    if (this.state !== 'open') return;
    this.transport?.removeListener('silence', this.onSilence);
    this.transport = undefined;
    this.emitStatus({ type: 'disconnected', sessionId: this.sessionId, reason: `WebSocket closed (${code}${reason ? ` ${reason}` : ''})` });
    if ((this.options.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS) <= 0) {
      void this.abandon(new BridgeError(ErrorCode.RESUME_FAILED, 'the connection to the service dropped and resume is disabled (--resume-timeout 0)'));
      return;
    }
    this.transition('resuming');
  };

  /**
   * Call ResumeSession and reconnect, with the retry policy's backoff and budget (resume-policy.ts). A resume is
   * done only once the service proved alive on the new connection (a message, an ack, or the pong to a ping sent
   * after OpenDataChannelInput); and until that connection has also stayed up for the policy's stable time, a new
   * drop continues the same outage. So a gateway that accepts and then drops every connection meets backoff and
   * the timeout, not a storm of ResumeSession calls.
   */
  private async resume(): Promise<void> {
    const retry = this.retry;
    retry.lost();
    const abort = (this.abortWork = new AbortController());
    const resumeTimeoutMs = this.options.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS;
    let stepTimeoutMs = FIRST_STEP_TIMEOUT_MS;
    let lastError: unknown;
    for (;;) {
      if (this.state !== 'resuming' || abort.signal.aborted) return;
      const next = retry.nextAttempt();
      if (next === undefined) break;
      const { attempt, delayMs } = next;
      this.emitStatus({ type: 'resuming', sessionId: this.sessionId, attempt, delayMs });
      if (delayMs > 0) {
        try {
          await sleep(delayMs, undefined, { signal: abort.signal });
        } catch {
          return;
        }
      }
      retry.attempting();
      const stepBound = (): number => Math.min(stepTimeoutMs, Math.max(1, retry.remainingMs()));
      const attemptStartedMs = Date.now();
      try {
        // Each step is bounded, and by what is left of --resume-timeout: the network that dropped the WebSocket
        // often took the SDK's keep-alive connection with it, and a request on that socket never returns.
        const credentials = await withDeadline(abort.signal, stepBound(), 'ResumeSession', (signal) => this.api.resumeSession(this.sessionId, { signal }));
        if (credentials === undefined) {
          this.transition('closed', new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${this.sessionId} ended while disconnected (terminated or timed out); the service returned no token to resume it`));
          return;
        }
        const transport = await connectDataChannel(credentials.streamUrl, credentials.tokenValue, { ...transportOptions(this.options, this.clientId), connectTimeoutMs: stepBound() });
        if (this.state !== 'resuming' || abort.signal.aborted) {
          transport.close();
          return;
        }
        const messagesResent = this.channel.bufferedMessages;
        this.channel.attach(transport);
        if (!(await transport.whenAlive(stepBound()))) {
          // Accepted, then closed or silent: not a resume. The loop goes on with its backoff.
          this.channel.detach();
          transport.terminate();
          throw new BridgeError(ErrorCode.SERVICE_ERROR, 'the new data channel connection closed or stayed silent before the service answered');
        }
        if (this.state !== 'resuming' || abort.signal.aborted) return;
        this.transport = transport;
        transport.on('silence', this.onSilence);
        const downtimeMs = retry.downtimeMs();
        retry.succeeded();
        this.transition('open');
        this.emitStatus({ type: 'resumed', sessionId: this.sessionId, downtimeMs, messagesResent, attempts: attempt });
        return;
      } catch (err) {
        lastError = err;
        if (err instanceof BridgeError && !isRetryable(err)) {
          this.transition('closed', err);
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

/** `promise`, or the abort's reason once `signal` fires (the promise's own outcome is then ignored). */
function raceAbort<T>(signal: AbortSignal, promise: Promise<T>): Promise<T> {
  if (signal.aborted) {
    promise.then((value) => (value as { close?: () => void } | undefined)?.close?.(), () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      // A transport that connects after the abort is closed, not leaked.
      promise.then((value) => (value as { close?: () => void } | undefined)?.close?.(), () => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
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

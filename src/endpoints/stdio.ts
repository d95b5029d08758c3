import type { Readable, Writable } from 'node:stream';
import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { smuxKeepAliveFor } from '../protocol/index.js';
import { smuxFailure } from './smux-failure.js';
import { BridgeSession, type BridgeSessionOptions, type SessionStatus, type SsmApi, type StartSessionInput } from '../session/index.js';
import { SmuxSession } from '../smux/index.js';
import { copyInBatches } from './copy-in-batches.js';
import { waitAtMost, writeBarrier } from './wait-at-most.js';

export interface StdioProxyOptions {
  api: SsmApi;
  target: string;
  /** Remote port for AWS-StartSSHSession. Ignored when `documentName` is given. */
  port?: number;
  documentName?: string;
  parameters?: Record<string, string[]>;
  reason?: string;
  /** Defaults to process.stdin / process.stdout: the only place in src/ that touches stdout. */
  input?: Readable;
  output?: Writable;
  logger?: Logger;
  session?: Omit<BridgeSessionOptions, 'api' | 'start' | 'logger'>;
  /** A session already open (BridgeSession.open: `ssm-bridge plugin`), bridged instead of starting one. */
  openSession?: BridgeSession;
  onStatus?: (status: SessionStatus) => void;
  /** How long to wait, after input ends, for the service to acknowledge what we sent. */
  flushTimeoutMs?: number;
}

/** How long the end of a session waits for received bytes to reach the output (a stalled reader must not hang us). */
const OUTPUT_DRAIN_TIMEOUT_MS = 10_000;

/** Resolve once `source` has ended (or was destroyed) and everything written to `sink` before that was flushed, or `sinkFailed` settled. */
async function drained(source: Readable, sink: Writable, timeoutMs: number, sinkFailed: Promise<void>): Promise<void> {
  const flushed = (async () => {
    if (!source.readableEnded && !source.destroyed) {
      await new Promise<void>((resolve) => {
        source.once('end', resolve);
        source.once('close', resolve);
      });
    }
    if (!sink.writable) return;
    await writeBarrier(sink, timeoutMs);
  })();
  // A sink that failed (its reader went away: a pipe stays "writable" after EPIPE) takes nothing more.
  await waitAtMost(Promise.race([flushed, sinkFailed]), timeoutMs);
}

/** The flush waits for acks the agent may never send (it does not ack what it could not write): bounded. */
const URGENT_FLUSH_MS = 2_000;

export function proxyStartInput(options: StdioProxyOptions): StartSessionInput {
  if (options.documentName) {
    return { target: options.target, documentName: options.documentName, ...(options.parameters ? { parameters: options.parameters } : {}), ...(options.reason ? { reason: options.reason } : {}) };
  }
  return {
    target: options.target,
    documentName: 'AWS-StartSSHSession',
    parameters: { portNumber: [String(options.port ?? 22)] },
    ...(options.reason ? { reason: options.reason } : {}),
  };
}

/** A running proxy: `done` settles when the session is over. */
export interface StdioProxy {
  session: BridgeSession;
  /** Resolves undefined for a normal end (input closed, or the remote side closed); rejects never. */
  done: Promise<BridgeError | undefined>;
  /**
   * End the session: what was read from the input is flushed (acknowledged by the agent), then TerminateSession.
   * `urgent` (a signal): wait at most a couple of seconds for the flush, also when a stop is already under way.
   */
  stop(options?: { urgent?: boolean }): Promise<void>;
}

/**
 * `proxy`: stdin/stdout bridged onto one session (SSH ProxyCommand). Stream sessions carry the bytes as
 * they are; a port-forwarding document works too (one smux stream, or basic mode).
 */
export async function startStdioProxy(options: StdioProxyOptions): Promise<StdioProxy> {
  const logger = options.logger ?? silentLogger;
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const session = options.openSession ?? (await BridgeSession.start({ ...options.session, api: options.api, start: proxyStartInput(options), logger }));
  if (options.onStatus) session.on('status', options.onStatus);

  // The error that ends the session reaches us through session.closed(); without a listener here it would
  // also be thrown as an unhandled 'error' event (a stack trace and exit 1 instead of our one-line message).
  session.data.on('error', () => {});

  let remote = session.data;
  let smux: SmuxSession | undefined;
  if (session.multiplexed) {
    smux = new SmuxSession(session.data, { role: 'client', keepAlive: smuxKeepAliveFor(session.handshake.agentVersion), allowPeerStreams: false });
    remote = smux.openStream();
    // A failed smux session (a malformed frame, its carrier gone) ends ours too: terminated, never left open.
    smux.on('error', (err: Error) => logger.warn({ err: err.message }, 'smux error'));
    smux.on('close', (reason?: Error) => {
      if (!session.isClosed) void session.terminate(URGENT_FLUSH_MS, smuxFailure(reason));
    });
    remote.on('error', () => {});
  }

  let stopping = false;
  let stopped: Promise<void> | undefined;
  let urgent = false;
  let hurry: (() => void) | undefined;
  const hurried = new Promise<void>((resolve) => (hurry = resolve));
  const stop = (stopOptions: { urgent?: boolean } = {}): Promise<void> => {
    if (stopOptions.urgent) {
      urgent = true;
      hurry?.();
    }
    stopped ??= (async () => {
      stopping = true;
      input.unpipe(remote);
      // Everything read from stdin becomes messages, then the service acknowledges it (through any resume),
      // then we terminate. A signal (ssh sends SIGHUP when it is done) cuts the wait short, never the terminate.
      // All of it within flushMs: a service that withholds its acks fills the window, and the barrier (bytes
      // becoming messages) then waits as long as the acks do.
      const flushMs = options.flushTimeoutMs ?? 30_000;
      const deadline = Date.now() + flushMs;
      const acknowledged = await Promise.race([
        (async () => (await writeBarrier(remote, flushMs)) && (await session.flushed(Math.max(0, deadline - Date.now()))))(),
        hurried.then(() => new Promise<boolean>((r) => setTimeout(() => r(false), URGENT_FLUSH_MS))),
      ]);
      // Not acknowledged: the bytes may never have arrived, and exit 0 would say they did (never 0 with bytes lost).
      const unacknowledged =
        !acknowledged && !urgent && !session.isClosed
          ? new BridgeError(
              ErrorCode.DATA_LOST,
              `the service did not acknowledge everything sent within ${Math.round(flushMs / 1000)} s of the end of input (${session.channel.bufferedMessages} messages outstanding); part of it may not have arrived`,
            )
          : undefined;
      smux?.close();
      // The flush is over, one way or the other: the terminate's own flush (of the flag) needs no more time.
      await session.terminate(URGENT_FLUSH_MS, unacknowledged);
    })();
    return stopped;
  };

  input.pipe(remote, { end: false });
  // Payloads arrive ≤ 1 KiB at a time, dozens per tick: they leave for the output one batch per write.
  const stopOutput = copyInBatches(remote, output);
  let remoteSentData = false;
  remote.once('data', () => (remoteSentData = true));
  input.once('end', () => void stop());
  // For their whole life: a reader that went away (EPIPE: ssh exited, `| head`) or an input that failed ends
  // the session like the end of input does (terminated, exit 0); unheard, the error crashed the process.
  let outputFailed: () => void = () => {};
  const outputGone = new Promise<void>((resolve) => (outputFailed = resolve));
  output.on('error', (err: Error) => {
    outputFailed();
    stopOutput();
    if (stopping) return;
    logger.info({ err: err.message }, 'the output was closed; ending the session');
    void stop({ urgent: true });
  });
  input.on('error', (err: Error) => {
    if (stopping) return;
    logger.info({ err: err.message }, 'reading the input failed; ending the session');
    void stop();
  });
  remote.once('end', () => {
    // The remote side closed (stream mode: the agent's connection ended). Nothing more will come.
    void session.terminate(options.flushTimeoutMs ?? 30_000);
  });

  // Whether the remote side had ended before the session did: read when the session closes, since the
  // session's end then ends `remote` too (on the next tick, before closed() settles).
  let remoteEndedFirst = false;
  session.once('closed', () => (remoteEndedFirst = remote.readableEnded));
  const done = session.closed().then(async (err) => {
    input.unpipe(remote);
    // The bytes that arrived before the end are still on their way to stdout: let them out first.
    await drained(remote, output, OUTPUT_DRAIN_TIMEOUT_MS, outputGone);
    stopOutput();
    if (input !== process.stdin) return classify(err, remoteEndedFirst);
    // stdin may keep the event loop alive; we are done reading.
    process.stdin.pause();
    return classify(err, remoteEndedFirst);
  });
  return { session, done, stop };

  function classify(err: BridgeError | undefined, remoteEndedFirst: boolean): BridgeError | undefined {
    // In stream mode the service ends the session when the remote connection closes: a normal end.
    // Stream mode: a channel_closed with a reason before the destination sent anything means the agent could not
    // connect (SPEC §5: Output = reason or empty); any other end of a stream session is the remote side closing.
    const serviceReason = session.serviceCloseReason ?? '';
    const streamModeNormalEnd = session.handshake.properties.type === undefined && (remoteSentData || serviceReason === '');
    if (err?.code === ErrorCode.SESSION_TERMINATED && (stopping || remoteEndedFirst || streamModeNormalEnd)) return undefined;
    // Ended with a reason before the destination said a word: the agent could not connect to it.
    if (err?.code === ErrorCode.SESSION_TERMINATED && session.handshake.properties.type === undefined && !remoteSentData && serviceReason !== '') {
      return new BridgeError(ErrorCode.CONNECT_TO_PORT_ERROR, `the agent could not connect to port ${options.port ?? 22} on ${options.target}: ${serviceReason}`, { cause: err });
    }
    return err;
  }
}

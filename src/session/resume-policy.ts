import { BridgeError, ErrorCode } from '../errors.js';

/**
 * When to try again and when to give up: resuming a dropped data channel (BridgeSession) and replacing an
 * ended session (the replacing carrier) follow the same rules. Pure: time comes from an injected clock and
 * randomness from an injected source, so test/session/resume-policy.test.ts runs it on a fake clock.
 */

export interface PolicyClock {
  now(): number;
}

export const systemClock: PolicyClock = { now: () => Date.now() };

export interface RetryPolicyOptions {
  /** Total time an outage may last before we give up (--resume-timeout). */
  budgetMs: number;
  clock?: PolicyClock;
  /** A number in [0, 1); jitter spreads retries of many clients. */
  random?: () => number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** The least time between two attempts, whatever the backoff says. */
  minIntervalMs?: number;
  /** A success that lasts this long ends the outage; a loss before that continues it (attempts, budget). */
  stableMs?: number;
}

export const RETRY_DEFAULTS = { firstDelayMs: 100, maxDelayMs: 5_000, minIntervalMs: 200, stableMs: 3_000 } as const;

export interface NextAttempt {
  /** 1 for the first attempt of this outage. */
  attempt: number;
  /** Wait this long before the attempt. */
  delayMs: number;
  /** What is left of the budget once the delay has passed (bound each step of the attempt by it). */
  remainingMs: number;
}

/**
 * One outage at a time: `lost()` opens it (or continues the last one, when the connection that ended it did
 * not stay up `stableMs`), `nextAttempt()` says how long to wait or that the budget is spent, `attempting()`
 * marks an attempt's start, `succeeded()` marks the end of the outage, provisionally until `stableMs` pass.
 * So a peer that accepts and then drops every connection meets backoff and the budget, never a storm.
 */
export class RetryPolicy {
  private readonly budgetMs: number;
  private readonly clock: PolicyClock;
  private readonly random: () => number;
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly minIntervalMs: number;
  private readonly stableMs: number;
  private outage: { startedMs: number; attempts: number; lastAttemptMs: number } | undefined;
  private succeededMs: number | undefined;

  constructor(options: RetryPolicyOptions) {
    this.budgetMs = options.budgetMs;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.firstDelayMs = options.firstDelayMs ?? RETRY_DEFAULTS.firstDelayMs;
    this.maxDelayMs = options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
    this.minIntervalMs = options.minIntervalMs ?? RETRY_DEFAULTS.minIntervalMs;
    this.stableMs = options.stableMs ?? RETRY_DEFAULTS.stableMs;
  }

  /** Whether an outage is open (lost and not yet stably recovered). */
  get inOutage(): boolean {
    this.expireStableSuccess();
    return this.outage !== undefined;
  }

  /** When the current outage started, or undefined. */
  get outageStartedMs(): number | undefined {
    return this.outage?.startedMs;
  }

  /** The connection (or session) was lost: open an outage, or continue the one a short-lived success interrupted. */
  lost(): void {
    this.expireStableSuccess();
    this.succeededMs = undefined;
    this.outage ??= { startedMs: this.clock.now(), attempts: 0, lastAttemptMs: -Infinity };
  }

  /** The next attempt of the open outage, or undefined once its budget is spent. */
  nextAttempt(): NextAttempt | undefined {
    const outage = this.outage;
    if (outage === undefined) return undefined;
    const now = this.clock.now();
    const elapsed = now - outage.startedMs;
    if (elapsed >= this.budgetMs) return undefined;
    const attempt = outage.attempts + 1;
    const backoff = attempt === 1 ? 0 : Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** (attempt - 2));
    const jittered = Math.round(backoff * (0.5 + this.random() / 2));
    const spacing = this.minIntervalMs - (now - outage.lastAttemptMs);
    const delayMs = Math.max(0, Math.min(Math.max(jittered, spacing), this.budgetMs - elapsed));
    return { attempt, delayMs, remainingMs: Math.max(1, this.budgetMs - elapsed - delayMs) };
  }

  /** An attempt starts now (after its delay). */
  attempting(): void {
    if (this.outage === undefined) return;
    this.outage.attempts++;
    this.outage.lastAttemptMs = this.clock.now();
  }

  /** Budget left now. */
  remainingMs(): number {
    if (this.outage === undefined) return this.budgetMs;
    return Math.max(0, this.budgetMs - (this.clock.now() - this.outage.startedMs));
  }

  /** How long the outage has lasted so far. */
  downtimeMs(): number {
    return this.outage === undefined ? 0 : this.clock.now() - this.outage.startedMs;
  }

  /** The attempt worked; the outage ends once that lasts `stableMs`. */
  succeeded(): void {
    this.succeededMs = this.clock.now();
  }

  private expireStableSuccess(): void {
    if (this.succeededMs !== undefined && this.clock.now() - this.succeededMs >= this.stableMs) {
      this.outage = undefined;
      this.succeededMs = undefined;
    }
  }
}

/**
 * A session ended (not by us): `replace` when a new session with the same document fixes it (expiry, idle
 * timeout, terminated elsewhere, the agent restarting, resume given up, bytes lost on the way), `final` when a
 * new one would fail the same way or the user must act (their input, their credentials, their permissions).
 */
export function sessionEndVerdict(error: BridgeError | undefined): 'replace' | 'final' {
  if (error === undefined) return 'final';
  return FINAL_CODES.has(error.code) ? 'final' : 'replace';
}

/** Starting a replacement failed: `retry` with backoff (within the budget), or `final`: end the run with it. */
export function startFailureVerdict(error: unknown): 'retry' | 'final' {
  if (!(error instanceof BridgeError)) return 'final';
  return FINAL_CODES.has(error.code) ? 'final' : 'retry';
}

/**
 * What no new session fixes. TARGET_NOT_CONNECTED is not among them: an agent restarting comes back.
 * PROTOCOL_ERROR is: a peer that breaks the protocol is a fault to report, and would break the next session too.
 */
const FINAL_CODES = new Set<ErrorCode>([
  ErrorCode.PROTOCOL_ERROR,
  ErrorCode.INVALID_ARGUMENT,
  ErrorCode.INVALID_DOCUMENT,
  ErrorCode.CREDENTIALS,
  ErrorCode.ACCESS_DENIED,
  ErrorCode.PORT_IN_USE,
]);

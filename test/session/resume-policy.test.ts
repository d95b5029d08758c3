import { describe, expect, it } from 'vitest';
import { BridgeError, ErrorCode } from '../../src/errors.js';
import { RetryPolicy, sessionEndVerdict, startFailureVerdict } from '../../src/session/resume-policy.js';

/** A clock the test moves by hand. */
function fakeClock(startMs = 1_000_000) {
  let now = startMs;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** Run attempts that all fail, at once after each delay; returns the delays. */
function failAll(policy: RetryPolicy, clock: ReturnType<typeof fakeClock>, limit?: number): number[] {
  const delays: number[] = [];
  for (let i = 0; i < (limit ?? 1_000); i++) {
    const next = policy.nextAttempt();
    if (!next) return delays;
    delays.push(next.delayMs);
    clock.advance(next.delayMs);
    policy.attempting();
  }
  if (limit === undefined) throw new Error('the budget never ran out');
  return delays;
}

describe('RetryPolicy (fake clock)', () => {
  it('backs off exponentially with jitter between 50 % and 100 %, capped, and at least 200 ms apart', () => {
    const clock = fakeClock();
    const noJitter = new RetryPolicy({ budgetMs: 60_000, clock, random: () => 0.999999 });
    noJitter.lost();
    const delays = failAll(noJitter, clock).slice(0, 10);
    // attempt 1 at once; attempt 2 waits at least the 200 ms spacing; then 200, 400, … up to 5 s.
    expect(delays).toEqual([0, 200, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);

    const clock2 = fakeClock();
    const halfJitter = new RetryPolicy({ budgetMs: 60_000, clock: clock2, random: () => 0 });
    halfJitter.lost();
    const low = failAll(halfJitter, clock2).slice(0, 9);
    expect(low).toEqual([0, 200, 200, 200, 400, 800, 1600, 2500, 2500]);
  });

  it('spends the budget and then says no more; the last delay never passes the budget', () => {
    const clock = fakeClock();
    const policy = new RetryPolicy({ budgetMs: 10_000, clock, random: () => 0.5 });
    policy.lost();
    const delays = failAll(policy, clock);
    const total = delays.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(10_000);
    expect(policy.nextAttempt()).toBeUndefined();
    expect(policy.remainingMs()).toBe(0);
    expect(delays.length).toBeGreaterThan(4);
    expect(delays.length).toBeLessThan(20);
  });

  it('a success that lasts the stable time ends the outage: the next loss starts afresh', () => {
    const clock = fakeClock();
    const policy = new RetryPolicy({ budgetMs: 10_000, clock, random: () => 0.5 });
    policy.lost();
    failAll(policy, clock, 5);
    policy.succeeded();
    clock.advance(3_000);
    expect(policy.inOutage).toBe(false);
    policy.lost();
    expect(policy.nextAttempt()).toMatchObject({ attempt: 1, delayMs: 0 });
    expect(policy.remainingMs()).toBe(10_000);
  });

  it('flapping: successes that do not last continue one outage, its attempts and its budget', () => {
    const clock = fakeClock();
    const policy = new RetryPolicy({ budgetMs: 10_000, clock, random: () => 0.5 });
    let attempts = 0;
    policy.lost();
    for (let i = 0; i < 1_000; i++) {
      const next = policy.nextAttempt();
      if (!next) break;
      clock.advance(next.delayMs);
      policy.attempting();
      attempts = next.attempt;
      // Every attempt "works" and then the connection drops 1 s later.
      policy.succeeded();
      clock.advance(1_000);
      policy.lost();
    }
    expect(policy.nextAttempt()).toBeUndefined();
    // 10 s of budget with the backoff growing: a handful of attempts, not a storm (1 per 200 ms would be 50).
    expect(attempts).toBeGreaterThan(3);
    expect(attempts).toBeLessThan(12);
  });

  it('gives the remaining budget after the delay, for bounding each step', () => {
    const clock = fakeClock();
    const policy = new RetryPolicy({ budgetMs: 1_000, clock, random: () => 0.5 });
    policy.lost();
    clock.advance(900);
    const next = policy.nextAttempt()!;
    expect(next.delayMs).toBe(0);
    expect(next.remainingMs).toBe(100);
  });
});

describe('what a session end and a failed start mean', () => {
  const err = (code: ErrorCode): BridgeError => new BridgeError(code, 'x');
  it.each([
    [ErrorCode.SESSION_TERMINATED, 'replace'],
    [ErrorCode.RESUME_FAILED, 'replace'],
    [ErrorCode.DATA_LOST, 'replace'],
    [ErrorCode.CHANNEL_CLOSED, 'replace'],
    [ErrorCode.PROTOCOL_ERROR, 'final'],
    [ErrorCode.TARGET_NOT_CONNECTED, 'replace'],
    [ErrorCode.SERVICE_ERROR, 'replace'],
    [ErrorCode.INVALID_DOCUMENT, 'final'],
    [ErrorCode.INVALID_ARGUMENT, 'final'],
    [ErrorCode.CREDENTIALS, 'final'],
    [ErrorCode.ACCESS_DENIED, 'final'],
  ] as const)('a session ended with %s: %s', (code, verdict) => {
    expect(sessionEndVerdict(err(code))).toBe(verdict);
  });

  it('our own end (no error) is final', () => {
    expect(sessionEndVerdict(undefined)).toBe('final');
  });

  it.each([
    [ErrorCode.SERVICE_ERROR, 'retry'],
    [ErrorCode.TIMEOUT, 'retry'],
    [ErrorCode.TARGET_NOT_CONNECTED, 'retry'],
    [ErrorCode.HANDSHAKE_FAILED, 'retry'],
    [ErrorCode.ACCESS_DENIED, 'final'],
    [ErrorCode.CREDENTIALS, 'final'],
    [ErrorCode.INVALID_DOCUMENT, 'final'],
  ] as const)('a replacement start failing with %s: %s', (code, verdict) => {
    expect(startFailureVerdict(err(code))).toBe(verdict);
  });

  it('a failure that is not ours (a bug) is final, never retried for ever', () => {
    expect(startFailureVerdict(new TypeError('x'))).toBe('final');
  });
});

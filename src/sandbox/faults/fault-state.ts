import { EventEmitter } from 'node:events';
import { BridgeError, ErrorCode } from '../../errors.js';
import type { GatewayFaults, SessionFault } from '../gateway/gateway.js';
import { mulberry32 } from './mulberry32.js';

/** How a fault-injected ResumeSession call fails. */
export type ResumeFailureKind = 'InternalServerError' | 'ThrottlingException';

/** How a fault-injected StartSession call fails. */
export type StartFailureKind = 'ThrottlingException' | 'AccessDeniedException' | 'InternalServerError';
const START_FAILURE_KINDS: readonly StartFailureKind[] = ['ThrottlingException', 'AccessDeniedException', 'InternalServerError'];

/**
 * Every fault the sandbox can inject; all off by default. The gateway reads the live object on every
 * frame and connection, so a change applies mid-session.
 */
export interface FaultSettings extends GatewayFaults {
  /**
   * Swallow every binary frame both ways, and the pongs, without closing: a silent connection (a dead NAT
   * mapping, a peer that froze). Only the client's silence detection gets it out (SPEC §2).
   */
  blackhole: boolean;
  /** Fail this many upcoming ResumeSession calls … */
  failResumeCount: number;
  /** … with 500 InternalServerError or 400 ThrottlingException ("Rate exceeded"). */
  failResumeWith: ResumeFailureKind;
  /** Fail this many upcoming StartSession calls … */
  failStartCount: number;
  /** … with 400 ThrottlingException ("Rate exceeded"), 400 AccessDeniedException or 500 InternalServerError. */
  failStartWith: StartFailureKind;
}

/** What `update()` and `POST /_sandbox/faults` accept: any subset; null (or 0) turns a `close*` fault off. */
export type FaultSettingsPatch = {
  [K in keyof FaultSettings]?: K extends 'closeAfterMessages' | 'closeAfterBytes' | 'closeEveryMs' ? number | null : FaultSettings[K];
} & {
  /** Reseed the PRNG (an unsigned 32-bit integer). */
  seed?: number;
};

export function defaultFaultSettings(): FaultSettings {
  return {
    closeAfterMessages: undefined,
    closeAfterBytes: undefined,
    closeEveryMs: undefined,
    dropRate: 0,
    duplicateRate: 0,
    reorderRate: 0,
    delayRate: 0,
    delayMs: 0,
    corruptDigestNext: 0,
    refuseDestination: false,
    blackhole: false,
    failResumeCount: 0,
    failResumeWith: 'InternalServerError',
    failStartCount: 0,
    failStartWith: 'ThrottlingException',
  };
}

export interface FaultStateEvents {
  /** The control API asked to cut a session's WebSocket (the session survives and can be resumed). */
  dropRequested: [sessionId: string];
  /** The control API asked for a timed fault on one session's agent or gateway path. */
  sessionFaultRequested: [sessionId: string, fault: SessionFault];
  /** The settings changed (update or reset). */
  changed: [settings: FaultSettings];
}

const RATES = ['dropRate', 'duplicateRate', 'reorderRate', 'delayRate'] as const;
const COUNTS = ['delayMs', 'corruptDigestNext', 'failResumeCount', 'failStartCount'] as const;
const CLOSERS = ['closeAfterMessages', 'closeAfterBytes', 'closeEveryMs'] as const;
const KNOWN = [...CLOSERS, ...RATES, ...COUNTS, 'refuseDestination', 'blackhole', 'failResumeWith', 'failStartWith', 'seed'];

function bad(key: string, expected: string, value: unknown): never {
  throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `faults.${key} must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
}

function wholeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * The sandbox's fault settings and the seeded PRNG every fault decision draws from. The API consumes
 * ResumeSession failures; the gateway reads the rest and listens for `dropRequested`.
 */
export class FaultState extends EventEmitter<FaultStateEvents> {
  private current: FaultSettings = defaultFaultSettings();
  private rng: () => number;
  private seedValue: number;

  constructor(seed = 1) {
    super();
    if (!wholeNumber(seed) || seed > 0xffffffff) bad('seed', 'an integer from 0 to 4294967295', seed);
    this.seedValue = seed;
    this.rng = mulberry32(seed);
  }

  /** The live settings: read them at each decision, not once. */
  get settings(): FaultSettings {
    return this.current;
  }

  get seed(): number {
    return this.seedValue;
  }

  /**
   * Merge a patch into the settings, all or nothing. Throws BridgeError `INVALID_ARGUMENT` naming the
   * first bad field (wrong type, rate outside 0–1, negative or fractional count, unknown key).
   */
  update(patch: FaultSettingsPatch | unknown): FaultSettings {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) bad('(body)', 'a JSON object of fault settings', patch);
    const next: FaultSettings = { ...this.current };
    let seed: number | undefined;
    for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
      if ((RATES as readonly string[]).includes(key)) {
        if (typeof value !== 'number' || !(value >= 0 && value <= 1)) bad(key, 'a number from 0 to 1', value);
        next[key as (typeof RATES)[number]] = value;
      } else if ((COUNTS as readonly string[]).includes(key)) {
        if (!wholeNumber(value)) bad(key, 'a whole number ≥ 0', value);
        next[key as (typeof COUNTS)[number]] = value;
      } else if ((CLOSERS as readonly string[]).includes(key)) {
        if (value !== null && !wholeNumber(value)) bad(key, 'a whole number ≥ 0, or null (off)', value);
        next[key as (typeof CLOSERS)[number]] = value === null || value === 0 ? undefined : value;
      } else if (key === 'refuseDestination' || key === 'blackhole') {
        if (typeof value !== 'boolean') bad(key, 'true or false', value);
        next[key] = value;
      } else if (key === 'failResumeWith') {
        if (value !== 'InternalServerError' && value !== 'ThrottlingException') bad(key, '"InternalServerError" or "ThrottlingException"', value);
        next.failResumeWith = value;
      } else if (key === 'failStartWith') {
        if (!START_FAILURE_KINDS.includes(value as StartFailureKind)) bad(key, '"ThrottlingException", "AccessDeniedException" or "InternalServerError"', value);
        next.failStartWith = value as StartFailureKind;
      } else if (key === 'seed') {
        if (!wholeNumber(value) || value > 0xffffffff) bad(key, 'an integer from 0 to 4294967295', value);
        seed = value;
      } else {
        throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `faults.${key} is not a known fault; use ${KNOWN.join(', ')}`);
      }
    }
    this.current = next;
    if (seed !== undefined) this.reseed(seed);
    this.emit('changed', next);
    return next;
  }

  /** Every fault off (the PRNG keeps its position). */
  reset(): FaultSettings {
    this.current = defaultFaultSettings();
    this.emit('changed', this.current);
    return this.current;
  }

  /** Restart the PRNG from a seed: the same traffic then meets the same decisions. */
  reseed(seed: number): void {
    if (!wholeNumber(seed) || seed > 0xffffffff) bad('seed', 'an integer from 0 to 4294967295', seed);
    this.seedValue = seed;
    this.rng = mulberry32(seed);
  }

  /** The next uniform number in [0, 1) from the seeded PRNG. */
  random(): number {
    return this.rng();
  }

  /** True with probability `rate`; draws from the PRNG only when 0 < rate < 1, so "off" changes nothing. */
  chance(rate: number): boolean {
    if (!(rate > 0)) return false;
    if (rate >= 1) return true;
    return this.rng() < rate;
  }

  /** Consume one "corrupt the next digest" credit: true when this outbound message must be corrupted. */
  takeCorruption(): boolean {
    if (this.current.corruptDigestNext <= 0) return false;
    this.current.corruptDigestNext--;
    return true;
  }

  /** Consume one ResumeSession failure: how this call must fail, or undefined when it must not. */
  takeResumeFailure(): ResumeFailureKind | undefined {
    if (this.current.failResumeCount <= 0) return undefined;
    this.current.failResumeCount--;
    return this.current.failResumeWith;
  }

  /** Consume one StartSession failure: how this call must fail, or undefined when it must not. */
  takeStartFailure(): StartFailureKind | undefined {
    if (this.current.failStartCount <= 0) return undefined;
    this.current.failStartCount--;
    return this.current.failStartWith;
  }

  /** Ask the gateway for a timed fault on one session; true when a listener (the gateway) heard it. */
  requestSessionFault(sessionId: string, fault: SessionFault): boolean {
    let applied = false;
    for (const listener of this.listeners('sessionFaultRequested')) {
      if ((listener as (id: string, f: SessionFault) => boolean)(sessionId, fault)) applied = true;
    }
    return applied;
  }

  /** Ask the gateway to cut the session's current WebSocket; true when a listener (the gateway) heard it. */
  requestDrop(sessionId: string): boolean {
    return this.emit('dropRequested', sessionId);
  }
}

import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../../src/errors.js';
import { FaultState, mulberry32 } from '../../../src/sandbox/faults/index.js';

describe('mulberry32', () => {
  it('is reproducible per seed and uniform enough', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(mulberry32(43)()).not.toBe(mulberry32(42)());
  });
});

describe('FaultState', () => {
  it('makes the same decisions after a reseed', () => {
    const f = new FaultState(9);
    const first = Array.from({ length: 100 }, () => f.chance(0.3));
    f.reseed(9);
    expect(Array.from({ length: 100 }, () => f.chance(0.3))).toEqual(first);
    expect(first.filter(Boolean).length).toBeGreaterThan(10);
  });

  it('does not draw from the PRNG for rates of 0 or 1', () => {
    const f = new FaultState(5);
    const g = new FaultState(5);
    expect(f.chance(0)).toBe(false);
    expect(f.chance(1)).toBe(true);
    expect(f.random()).toBe(g.random());
  });

  it('consumes corruption and ResumeSession failure credits', () => {
    const f = new FaultState();
    expect(f.takeCorruption()).toBe(false);
    expect(f.takeResumeFailure()).toBeUndefined();
    f.update({ corruptDigestNext: 2, failResumeCount: 2, failResumeWith: 'ThrottlingException' });
    expect([f.takeCorruption(), f.takeCorruption(), f.takeCorruption()]).toEqual([true, true, false]);
    expect([f.takeResumeFailure(), f.takeResumeFailure(), f.takeResumeFailure()]).toEqual(['ThrottlingException', 'ThrottlingException', undefined]);
  });

  it('validates updates all or nothing, with BridgeError', () => {
    const f = new FaultState();
    const changes: unknown[] = [];
    f.on('changed', (s) => changes.push({ ...s }));
    expect(() => f.update({ dropRate: 0.1, delayMs: -5 })).toThrow(BridgeError);
    expect(f.settings.dropRate).toBe(0);
    expect(changes).toHaveLength(0);
    f.update({ dropRate: 0.1 });
    expect(changes).toHaveLength(1);
    expect(() => new FaultState(-1)).toThrow(/seed/);
  });

  it('emits dropRequested for the gateway', () => {
    const f = new FaultState();
    expect(f.requestDrop('s-1')).toBe(false);
    const seen: string[] = [];
    f.on('dropRequested', (id) => seen.push(id));
    expect(f.requestDrop('s-1')).toBe(true);
    expect(seen).toEqual(['s-1']);
  });
});

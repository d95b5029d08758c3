import { describe, expect, it } from 'vitest';
import { RttEstimator } from '../../src/channel/index.js';

/* SPEC §5: RTO starts at 200 ms; rttvar = 3/4·rttvar + 1/4·|srtt − rtt|, srtt = 7/8·srtt + 1/8·rtt
   (srtt starts at 100 ms), rto = srtt + max(10 ms, 4·rttvar), capped at 1 s. */
describe('RttEstimator', () => {
  it('starts at RTO 200 ms with srtt 100 ms', () => {
    const e = new RttEstimator();
    expect(e.rtoMs).toBe(200);
    expect(e.srttMs).toBe(100);
  });

  it('follows the SPEC formulas, rttvar before srtt', () => {
    const e = new RttEstimator();
    let srtt = 100;
    let rttvar = e.rttvarMs;
    for (const rtt of [40, 60, 5, 5, 300, 1, 1, 1]) {
      e.observe(rtt);
      rttvar = 0.75 * rttvar + 0.25 * Math.abs(srtt - rtt);
      srtt = 0.875 * srtt + 0.125 * rtt;
      expect(e.srttMs).toBeCloseTo(srtt, 9);
      expect(e.rttvarMs).toBeCloseTo(rttvar, 9);
      expect(e.rtoMs).toBeCloseTo(Math.min(1000, srtt + Math.max(10, 4 * rttvar)), 9);
    }
  });

  it('never goes below srtt + 10 ms, and never above the cap', () => {
    const e = new RttEstimator();
    for (let i = 0; i < 500; i++) e.observe(2);
    expect(e.rtoMs).toBeCloseTo(e.srttMs + 10, 6);
    expect(e.rtoMs).toBeLessThan(13);
    for (let i = 0; i < 50; i++) e.observe(5000);
    expect(e.rtoMs).toBe(1000);
    const capped = new RttEstimator(300);
    for (let i = 0; i < 50; i++) capped.observe(5000);
    expect(capped.rtoMs).toBe(300);
  });
});

/**
 * Retransmission timeout from measured round trips (SPEC §5): RTO starts at 200 ms,
 * rttvar = 3/4·rttvar + 1/4·|srtt − rtt|, srtt = 7/8·srtt + 1/8·rtt, rto = srtt + max(10 ms, 4·rttvar),
 * capped at 1 s. Only first transmissions are measured (Karn), so resends never skew it.
 */
export class RttEstimator {
  srttMs = 100;
  rttvarMs = 25;
  rtoMs = 200;
  private readonly minVarianceMs = 10;
  private readonly maxRtoMs: number;

  constructor(maxRtoMs = 1000) {
    this.maxRtoMs = maxRtoMs;
  }

  observe(rttMs: number): void {
    this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - rttMs);
    this.srttMs = 0.875 * this.srttMs + 0.125 * rttMs;
    this.rtoMs = Math.min(this.maxRtoMs, this.srttMs + Math.max(this.minVarianceMs, 4 * this.rttvarMs));
  }
}

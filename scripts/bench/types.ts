/**
 * One benchmark row: a named measurement that `run()` takes once per sample (the unit says which way is
 * better: a rate higher, a time lower; the report only takes medians and spreads).
 * Modules in scripts/bench/ export `rows: BenchRow[]`; scripts/bench/registry.ts lists the modules.
 */
export interface BenchRow {
  /** Table section, e.g. `codec`, `channel`, `ceiling`. */
  group: string;
  name: string;
  /** What one sample counts, e.g. `msgs/s`, `MB/s` (10^6 bytes per second). */
  unit: string;
  /** One sample. */
  run(): Promise<number>;
  /** Id (`group/name`) of the row that bounds this one; the report shows median / ceiling median. */
  ceiling?: string;
  /** One line for the report: what exactly is measured. */
  note?: string;
  /** Why the row cannot run on this machine (e.g. an optional external binary is not configured), or undefined. */
  skip?(): string | undefined;
}

export function rowId(row: Pick<BenchRow, 'group' | 'name'>): string {
  return `${row.group}/${row.name}`;
}

export const MiB = 1024 * 1024;

/** Bytes per second → MB/s (10^6). */
export function toMBps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The element at index ⌊p% × n⌋ of the sorted values (p99 of 1000: the 991st smallest). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

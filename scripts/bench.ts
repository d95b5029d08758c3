import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { allRows } from './bench/registry.js';
import { median, rowId, type BenchRow } from './bench/types.js';

/*
 * ssm-bridge benchmarks: `npm run bench [-- --runs N] [--filter TEXT]... [--out FILE] [--list]`.
 *
 * Every selected row runs N times (default 3), interleaved (run 1 of every row, then run 2, …) so slow
 * drift of the machine spreads over all rows. The table shows the median, the min–max and the spread
 * ((max − min) / median); rows with a ceiling show median / ceiling median. bench/results.json gets the
 * machine, every sample and the same figures. Rows live in scripts/bench/*.ts (see registry.ts).
 */

interface Options {
  runs: number;
  filters: string[];
  out: string;
  list: boolean;
}

const USAGE = `usage: node dist/scripts/bench.js [--runs N] [--filter TEXT]... [--out FILE] [--list]
  --runs N        samples per row (default 3, at least 1)
  --filter TEXT   only rows whose "group/name" contains TEXT (case-insensitive; repeatable: any matches);
                  the ceilings of selected rows run too
  --out FILE      where to write the JSON results (default bench/results.json)
  --list          print the row ids and exit`;

function parseArgs(argv: string[]): Options {
  const options: Options = { runs: 3, filters: [], out: 'bench/results.json', list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--runs') {
      options.runs = Number.parseInt(value(), 10);
      if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error(`--runs must be a positive integer\n${USAGE}`);
    } else if (arg === '--filter') options.filters.push(value().toLowerCase());
    else if (arg === '--out') options.out = value();
    else if (arg === '--list') options.list = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  return options;
}

/** The rows matching the filters, plus the ceilings they refer to, in registry order. */
function selectRows(rows: BenchRow[], filters: string[]): BenchRow[] {
  if (filters.length === 0) return rows;
  const wanted = new Set(rows.filter((r) => filters.some((f) => rowId(r).toLowerCase().includes(f))).map(rowId));
  for (const r of rows) if (wanted.has(rowId(r)) && r.ceiling !== undefined) wanted.add(r.ceiling);
  return rows.filter((r) => wanted.has(rowId(r)));
}

interface RowResult {
  id: string;
  group: string;
  name: string;
  unit: string;
  note?: string;
  samples: number[];
  median: number;
  min: number;
  max: number;
  /** (max − min) / median. */
  spread: number;
  ceiling?: string;
  /** median / ceiling median. */
  ceilingRatio?: number;
  error?: string;
  /** Why the row did not run (not a failure). */
  skipped?: string;
}

function format(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (value >= 100_000) return Math.round(value).toLocaleString('en-US');
  if (value >= 100) return value.toFixed(0);
  if (value >= 10 || value === 0) return value.toFixed(1);
  return value.toPrecision(2);
}

function printTable(results: RowResult[]): void {
  const header = ['group', 'row', 'median', 'unit', 'min–max', 'spread', 'vs ceiling'];
  const lines = results.map((r) => [
    r.group,
    r.name,
    r.skipped !== undefined ? 'skipped' : r.error ? 'FAILED' : format(r.median),
    r.unit,
    r.skipped !== undefined ? r.skipped.slice(0, 60) : r.error ? r.error.slice(0, 60) : `${format(r.min)}–${format(r.max)}`,
    r.skipped !== undefined || r.error ? '' : `${(r.spread * 100).toFixed(1)}%`,
    r.ceilingRatio === undefined ? '' : `${(r.ceilingRatio * 100).toFixed(0)}% of ${r.ceiling}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log('sandbox agent: unpaced (the real agent\'s behaviour without its 1 ms sleep per message), so rows measure ssm-bridge, not AWS pacing; except the striping rows, which are paced like the agent (~1 MB/s per session)');
  console.log(row(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(row(l));
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.list) {
    for (const r of allRows) console.log(`${rowId(r)}  [${r.unit}]${r.ceiling ? `  ceiling: ${r.ceiling}` : ''}`);
    return;
  }
  const rows = selectRows(allRows, options.filters);
  if (rows.length === 0) throw new Error(`no row matches ${options.filters.map((f) => JSON.stringify(f)).join(', ')}; see --list`);

  const cpus = os.cpus();
  const machine = {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
  };
  const date = new Date().toISOString();
  console.log(
    `ssm-bridge bench — ${machine.cores} × ${machine.cpuModel}, Node ${machine.node}, ${date}, ${options.runs} run(s) per row`,
  );

  const samples = new Map<string, number[]>(rows.map((r) => [rowId(r), []]));
  const errors = new Map<string, string>();
  const skipped = new Map<string, string>();
  for (const r of rows) {
    const reason = r.skip?.();
    if (reason === undefined) continue;
    skipped.set(rowId(r), reason);
    console.log(`  skipped  ${rowId(r).padEnd(48)} ${reason}`);
  }
  for (let run = 1; run <= options.runs; run++) {
    for (const r of rows) {
      const id = rowId(r);
      if (errors.has(id) || skipped.has(id)) continue;
      try {
        const value = await r.run();
        if (!Number.isFinite(value)) throw new Error(`not a number: ${value}`);
        samples.get(id)!.push(value);
        console.log(`  run ${run}/${options.runs}  ${id.padEnd(48)} ${format(value).padStart(12)} ${r.unit}`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        errors.set(id, message);
        console.log(`  run ${run}/${options.runs}  ${id.padEnd(48)} FAILED: ${message}`);
      }
    }
  }

  const results: RowResult[] = rows.map((r) => {
    const id = rowId(r);
    const s = samples.get(id)!;
    const m = s.length > 0 ? median(s) : Number.NaN;
    const min = s.length > 0 ? Math.min(...s) : Number.NaN;
    const max = s.length > 0 ? Math.max(...s) : Number.NaN;
    const result: RowResult = { id, group: r.group, name: r.name, unit: r.unit, samples: s, median: m, min, max, spread: (max - min) / m };
    if (r.note !== undefined) result.note = r.note;
    const error = errors.get(id);
    if (error !== undefined) result.error = error;
    const skip = skipped.get(id);
    if (skip !== undefined) result.skipped = skip;
    return result;
  });
  for (const result of results) {
    const r = rows.find((x) => rowId(x) === result.id)!;
    const ceiling = r.ceiling === undefined ? undefined : results.find((x) => x.id === r.ceiling);
    if (r.ceiling !== undefined) result.ceiling = r.ceiling;
    if (ceiling && Number.isFinite(ceiling.median) && Number.isFinite(result.median)) result.ceilingRatio = result.median / ceiling.median;
  }

  console.log('');
  printTable(results);
  const out = resolve(options.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ machine, date, runs: options.runs, rows: results }, null, 2)}\n`);
  console.log(`\nresults: ${out}`);
  if (errors.size > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 2;
});

import type net from 'node:net';
import { withForward } from './cli-harness.js';
import { connect, countHeader, liveSessionId } from './cli.js';
import { writeBytes } from './io.js';
import { within } from './servers.js';
import { MiB, type BenchRow } from './types.js';

/*
 * The client against the sandbox's model of the real agent (no send window, one resend per 100 ms, acks after a
 * blocking write): how fast a paused reader recovers, and how hard a stalled agent is resent to. Each measured
 * row has its baseline, the same transfer without the pause or the stall, in the same run.
 */

const DOWNLOAD = 32 * MiB;
const PAUSE_MS = 4_000;
const UPLOAD = 24 * MiB;
const STALL_MS = 5_000;

/** Download `bytes` from the source server; the reader stops for `pauseMs` after a quarter. Elapsed ms. */
async function download(port: number, bytes: number, pauseMs: number): Promise<number> {
  const s = await connect(port);
  const started = performance.now();
  s.write(countHeader(bytes));
  let got = 0;
  let paused = pauseMs === 0;
  await within(
    new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (!paused && got >= bytes / 4) {
          paused = true;
          s.pause();
          setTimeout(() => s.resume(), pauseMs);
        }
        if (got >= bytes) resolve();
      });
      s.once('close', () => (got >= bytes ? resolve() : reject(new Error(`closed after ${got} of ${bytes} bytes`))));
    }),
    120_000,
    `${bytes} bytes down`,
  );
  s.destroy();
  return performance.now() - started;
}

/** Upload through the discard server; with `stallMs`, the agent's destination takes nothing for that long at a sixth. Resends/s seen by the agent. */
async function uploadResendRate(stallMs: number): Promise<number> {
  return withForward('discard', async (f) => {
    const s: net.Socket = await connect(f.port);
    const answered = new Promise<void>((resolve) => s.once('data', () => resolve()));
    s.write(countHeader(UPLOAD));
    const sessionId = await liveSessionId(f.endpoint);
    const started = performance.now();
    await writeBytes(s, UPLOAD / 6);
    if (stallMs > 0) {
      const res = await fetch(`${f.endpoint}/_sandbox/sessions/${sessionId}/block-destination`, { method: 'POST', body: JSON.stringify({ ms: stallMs }) });
      if (res.status !== 202) throw new Error(`block-destination: HTTP ${res.status}`);
    }
    await writeBytes(s, UPLOAD - UPLOAD / 6);
    await within(answered, 120_000, 'the upload to be answered');
    const seconds = stallMs > 0 ? stallMs / 1000 : (performance.now() - started) / 1000;
    const counters = ((await (await fetch(`${f.endpoint}/_sandbox/sessions/${sessionId}`)).json()) as { counters: { duplicatesReceived: number } }).counters;
    s.destroy();
    // Every client resend reaches the agent as a duplicate (no fault adds any here).
    return counters.duplicatesReceived / seconds;
  });
}

export const rows: BenchRow[] = [
  { group: 'real agent', name: 'download 32 MiB, no pause', unit: 'ms', note: 'lower is better; forward, unpaced agent: the baseline of the next row', run: () => withForward('source', (f) => download(f.port, DOWNLOAD, 0)) },
  {
    group: 'real agent',
    name: 'slow reader: recovery',
    unit: 'ms',
    note: `lower is better; the same download with the reader paused ${PAUSE_MS / 1000} s after 8 MiB: elapsed − pause − the baseline measured right before`,
    run: () =>
      withForward('source', async (f) => {
        const base = await download(f.port, DOWNLOAD, 0);
        const paused = await download(f.port, DOWNLOAD, PAUSE_MS);
        return Math.max(0, paused - PAUSE_MS - base);
      }),
  },
  { group: 'real agent', name: 'resends/s, no stall', unit: 'msgs/s', note: 'lower is better; 24 MiB upload through forward: the baseline', run: () => uploadResendRate(0) },
  { group: 'real agent', name: 'resends/s during a 5 s stall', unit: 'msgs/s', note: 'lower is better; the agent\'s destination takes nothing for 5 s mid-upload; target ≤ 20 (official client and agent: ≤ 10)', run: () => uploadResendRate(STALL_MS) },
];

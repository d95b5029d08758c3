import type { Logger as PinoLogger } from 'pino';
import type { PortForwarder } from '../endpoints/index.js';
import type { SessionStatus } from '../session/index.js';
import { announce } from './logging.js';
import { parseDurationMs } from './options.js';

/** What `--stats-interval` reports per tunnel. */
export interface TunnelStats {
  tunnel: string;
  bytesToRemote: number;
  bytesFromRemote: number;
  connectionsOpened: number;
  connectionsActive: number;
  resumes: number;
  /** New sessions started behind the listener after one ended. */
  replacements: number;
  /** The session carrying the tunnel now (the first, when several stripe it). */
  sessionId: string;
  /** With --sessions N > 1: each session's own counters. */
  sessions?: Array<{ sessionId: string; bytesToRemote: number; bytesFromRemote: number; connectionsOpened: number; connectionsActive: number }>;
}

export interface StatsReporter {
  /** The numbers now, one entry per tunnel. */
  snapshot(): TunnelStats[];
  stop(): void;
}

/** `--stats-interval` in milliseconds; undefined or 0 turns stats off. */
export function statsIntervalFromArgs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return parseDurationMs(value, '--stats-interval') || undefined;
}

/** 1536 → "1.5 KiB" */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Every `intervalMs`, one `event: 'stats'` record per tunnel: bytes each way, connections opened and
 * active, and resumes (the `resumed` status events). At a log level above info the line goes to stderr
 * anyway: whoever asked for stats wants to see them.
 */
export function startStatsReporter(tunnels: Array<{ name: string; forwarder: PortForwarder }>, intervalMs: number, logger: PinoLogger): StatsReporter {
  const resumes = new Map<string, number>();
  const replacements = new Map<string, number>();
  for (const { name, forwarder } of tunnels) {
    resumes.set(name, 0);
    replacements.set(name, 0);
    forwarder.on('status', (status: SessionStatus) => {
      if (status.type === 'resumed') resumes.set(name, (resumes.get(name) ?? 0) + 1);
      if (status.type === 'replaced') replacements.set(name, (replacements.get(name) ?? 0) + 1);
    });
  }
  const snapshot = (): TunnelStats[] =>
    tunnels.map(({ name, forwarder }) => ({
      tunnel: name,
      bytesToRemote: forwarder.counters.bytesToRemote,
      bytesFromRemote: forwarder.counters.bytesFromRemote,
      connectionsOpened: forwarder.counters.connectionsOpened,
      connectionsActive: forwarder.counters.connectionsActive,
      resumes: resumes.get(name) ?? 0,
      replacements: replacements.get(name) ?? 0,
      sessionId: forwarder.sessionId,
      ...(forwarder.sessionIds.length > 1 ? { sessions: forwarder.carrier.sessionCounters().map(({ sessionId, counters }) => ({ sessionId, ...counters })) } : {}),
    }));
  const report = (): void => {
    for (const s of snapshot()) {
      const line = `stats ${s.tunnel}: sent ${formatBytes(s.bytesToRemote)}, received ${formatBytes(s.bytesFromRemote)}, connections ${s.connectionsOpened} opened / ${s.connectionsActive} active, resumes ${s.resumes}${s.replacements > 0 ? `, sessions replaced ${s.replacements} (now ${s.sessionId})` : ''}${s.sessions ? `, over ${s.sessions.length} sessions (${s.sessions.map((m) => `${m.sessionId}: ${m.connectionsActive} active, received ${formatBytes(m.bytesFromRemote)}`).join('; ')})` : ''}`;
      announce(logger, { event: 'stats', ...s }, line);
    }
  };
  const timer = intervalMs > 0 ? setInterval(report, intervalMs) : undefined;
  timer?.unref();
  return {
    snapshot,
    stop: () => {
      if (timer) clearInterval(timer);
    },
  };
}

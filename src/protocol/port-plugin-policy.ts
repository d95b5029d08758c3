import { CLIENT_VERSION } from './constants.js';

/*
 * The client's rules for the agent's port plugin (SPEC §7), in one place for `forward` and `proxy`.
 * The sandbox keeps its own copy of the agent's side (src/sandbox/agent/agent-policy.ts) on purpose: a mistake
 * made once in a shared table would pass every test.
 */

/** Agents up to this version have no multiplexing (port_mux.go arrived after it). */
export const LAST_AGENT_WITHOUT_MUX = '3.0.196.0';
/** The agent multiplexes only for clients reporting at least this (SPEC §2, §7). */
export const MUX_MIN_CLIENT_VERSION = '1.1.70';
/** From agent 3.1.1575.0 on, keep-alive is off for clients newer than this. */
export const KEEPALIVE_LAST_CLIENT_VERSION = '1.2.331.0';
/** smux keep-alive as xtaci/smux runs it by default: a NOP every 10 s, the session dead after 30 s of silence. */
export const SMUX_KEEPALIVE_TIMING = Object.freeze({ intervalMs: 10_000, timeoutMs: 30_000 });

/** Compare dotted numeric versions; missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Whether the agent multiplexes a LocalPortForwarding session for the version we report. */
export function agentMultiplexes(agentVersion: string, clientVersion: string = CLIENT_VERSION): boolean {
  return compareVersions(agentVersion, LAST_AGENT_WITHOUT_MUX) > 0 && compareVersions(clientVersion, MUX_MIN_CLIENT_VERSION) >= 0;
}

/**
 * Whether the agent runs smux keep-alive on a multiplexed session, by release: on up to 3.1.1374.0 for every
 * client, off in 3.1.1446.0 for everyone, on again in 3.1.1476.0 and 3.1.1511.0, and from 3.1.1575.0 only for
 * clients reporting 1.2.331.0 or older. Both ends must agree: a side that expects NOPs the other never sends
 * ends an idle session after 30 s, and one that sends none to a side that expects them is cut off.
 * Releases between the listed ones take the rule of the one before.
 */
export function agentRunsSmuxKeepAlive(agentVersion: string, clientVersion: string = CLIENT_VERSION): boolean {
  if (compareVersions(agentVersion, '3.1.1446.0') < 0) return true;
  if (compareVersions(agentVersion, '3.1.1476.0') < 0) return false;
  if (compareVersions(agentVersion, '3.1.1575.0') < 0) return true;
  return compareVersions(clientVersion, KEEPALIVE_LAST_CLIENT_VERSION) <= 0;
}

/** The keep-alive our smux client must run for this agent: the agent's own, or none. */
export function smuxKeepAliveFor(agentVersion: string, clientVersion: string = CLIENT_VERSION): typeof SMUX_KEEPALIVE_TIMING | false {
  return agentRunsSmuxKeepAlive(agentVersion, clientVersion) ? SMUX_KEEPALIVE_TIMING : false;
}

/**
 * How a port session carries connections, from what its handshake said: `multiplexed` (smux, many at once) for
 * a LocalPortForwarding session with an agent that multiplexes, `basic` (one at a time) for one that does not,
 * and `stream` for a session without the LocalPortForwarding type (one byte stream: SSH-style documents).
 */
export function portPluginMode(handshake: { agentVersion: string; properties: { type?: string } }, clientVersion: string = CLIENT_VERSION): 'multiplexed' | 'basic' | 'stream' {
  if (handshake.properties.type !== 'LocalPortForwarding') return 'stream';
  return agentMultiplexes(handshake.agentVersion, clientVersion) ? 'multiplexed' : 'basic';
}

/*
 * Every policy of the emulated agent, in one place, each with the agent source it comes from
 * (aws/amazon-ssm-agent 3.3.x; vendored xtaci/smux v1.5.15). docs/sandbox.md has the same table in prose.
 *
 * This module belongs to the sandbox alone: the client keeps its own rules (src/protocol, src/endpoints), so a
 * mistake on one side shows up as a failing test instead of being shared by both.
 */

/** agent/session/config/config.go: StreamDataPayloadSize — what one read of the destination takes. */
export const STREAM_DATA_PAYLOAD_BYTES = 1024;
/** port_basic.go WritePump / port_mux.go transferDataToMgs: `time.Sleep(time.Millisecond)` after every message. */
export const SEND_LOOP_SLEEP_MS = 1;
/** config.go OutgoingMessageBufferCapacity: past it a message is sent but not kept for resend. */
export const OUTGOING_BUFFER_CAPACITY = 100_000;
/** config.go IncomingMessageBufferCapacity: out-of-order messages past it are dropped without an ack. */
export const INCOMING_BUFFER_CAPACITY = 100_000;
/** config.go ResendSleepInterval: the resend scheduler's tick; it resends at most the oldest message per tick. */
export const RESEND_TICK_MS = 100;
/** config.go DefaultTransmissionTimeout, DefaultRoundTripTime, DefaultRoundTripTimeVariation. */
export const INITIAL_RTO_MS = 200;
export const INITIAL_SRTT_MS = 100;
export const INITIAL_RTTVAR_MS = 0;
/** config.go RTTConstant (1/8), RTTVConstant (1/4), ClockGranularity (10 ms), MaxTransmissionTimeout (1 s). */
export const RTT_GAIN = 1 / 8;
export const RTTVAR_GAIN = 1 / 4;
export const CLOCK_GRANULARITY_MS = 10;
export const MAX_RTO_MS = 1_000;
/** datachannel.go PrepareToCloseChannel: at the end, wait at most 2 s for the outgoing buffer to empty. */
export const END_OF_SESSION_WAIT_MS = 2_000;
/** PrepareToCloseChannel polls the buffer every 10 ms. */
export const END_OF_SESSION_POLL_MS = 10;
/** datachannel.go handshakeTimeout: a HandshakeResponse must arrive within 15 s. */
export const HANDSHAKE_TIMEOUT_MS = 15_000;
/** config.go WebSocketPingInterval / WebSocketPongWaitTimeout (websocketchannel.go: deadline = last pong + 60 s). */
export const HEARTBEAT = { pingIntervalMs: 54_000, pongWaitMs: 60_000 } as const;
/** config.go DataChannelRetryInitialDelayMillis (100 + rand 100), DataChannelNumMaxAttempts (5), RetryGeometricRatio (2). */
export const RECONNECT = { initialDelayMs: 100, jitterMs: 100, attempts: 5, ratio: 2, maxDelayMs: 5_000 } as const;

/** xtaci/smux mux.go DefaultConfig. */
export const SMUX_DEFAULTS = {
  keepAliveIntervalMs: 10_000,
  keepAliveTimeoutMs: 30_000,
  maxFrameBytes: 32_768,
  /** MaxReceiveBuffer: the session-wide receive budget; when spent, recvLoop stops reading. */
  maxReceiveBufferBytes: 4_194_304,
  /** defaultAcceptBacklog in session.go: SYNs queued before AcceptStream takes them. */
  acceptBacklog: 1024,
} as const;
/** io.Copy's buffer (Go io.go: 32 KiB): what one stream read hands to the destination at a time. */
export const COPY_BUFFER_BYTES = 32 * 1024;
/**
 * The unix socket between the data channel and the smux server (port_mux.go MgsConn) and, in the other
 * direction, between smux and transferDataToMgs. Linux's default unix stream socket buffer is ~208 KiB
 * (net.core.wmem_default); the source does not set it. A decision, written down in docs/sandbox.md.
 */
export const MUX_PIPE_BYTES = 208 * 1024;

/** port.go muxSupportedClientVersion: multiplexing needs a client reporting at least this. */
export const MUX_MIN_CLIENT_VERSION = '1.1.70';
/** The first agents with port_mux.go are the ones after this version (release notes 3.0.222.0: "multiplexing"). */
export const LAST_AGENT_WITHOUT_MUX = '3.0.196.0';
/** port_mux.go muxKeepAliveDisabledAfterThisClientVersion (agents from 3.1.1575.0 on). */
export const KEEPALIVE_LAST_CLIENT_VERSION = '1.2.331.0';

export type PortPluginMode = 'stream' | 'basic' | 'mux';

/** Compare dotted numeric versions ("3.1.1511.0" < "3.1.1575.0"); missing parts count as 0. */
export function compareAgentVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * port.go GetSession: mux iff the properties say LocalPortForwarding and the client (its HandshakeResponse
 * ClientVersion) is at least 1.1.70 — on an agent that has port_mux.go at all. Everything else is a
 * BasicPortSession: "basic" for LocalPortForwarding, "stream" (ends with the destination) otherwise.
 */
export function portPluginMode(agentVersion: string, clientVersion: string, propertiesType: string | undefined): PortPluginMode {
  if (propertiesType !== 'LocalPortForwarding') return 'stream';
  const agentHasMux = compareAgentVersions(agentVersion, LAST_AGENT_WITHOUT_MUX) > 0;
  return agentHasMux && compareAgentVersions(clientVersion, MUX_MIN_CLIENT_VERSION) >= 0 ? 'mux' : 'basic';
}

/**
 * Whether the agent's smux server runs keep-alive (port_mux.go initialize, by release):
 * - up to 3.1.1374.0: smux.DefaultConfig(), keep-alive on for every client;
 * - 3.1.1446.0: keep-alive disabled for everyone;
 * - 3.1.1476.0 and 3.1.1511.0: DefaultConfig again, on for every client;
 * - from 3.1.1575.0: off when the client reports a version newer than 1.2.331.0.
 * Releases between those listed are given the rule of the release before them (the source is silent).
 */
export function smuxKeepAliveEnabled(agentVersion: string, clientVersion: string): boolean {
  if (compareAgentVersions(agentVersion, '3.1.1446.0') < 0) return true;
  if (compareAgentVersions(agentVersion, '3.1.1476.0') < 0) return false;
  if (compareAgentVersions(agentVersion, '3.1.1575.0') < 0) return true;
  return compareAgentVersions(clientVersion, KEEPALIVE_LAST_CLIENT_VERSION) <= 0;
}

/** datachannel.go calculateRetransmissionTimeout, on each acknowledgement (times in ms). */
export function nextRetransmissionTimeout(state: { srttMs: number; rttvarMs: number }, rttMs: number): { srttMs: number; rttvarMs: number; rtoMs: number } {
  const rttvarMs = (1 - RTTVAR_GAIN) * state.rttvarMs + RTTVAR_GAIN * Math.abs(state.srttMs - rttMs);
  const srttMs = (1 - RTT_GAIN) * state.srttMs + RTT_GAIN * rttMs;
  const rtoMs = Math.min(MAX_RTO_MS, srttMs + Math.max(CLOCK_GRANULARITY_MS, 4 * rttvarMs));
  return { srttMs, rttvarMs, rtoMs };
}

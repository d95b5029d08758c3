import type { BridgeError } from '../errors.js';

/** What a session reports to its user, as a discriminated union (STYLE: state machines). */
export type SessionStatus =
  | { type: 'connected'; sessionId: string; agentVersion: string }
  | { type: 'disconnected'; sessionId: string; reason: string }
  | { type: 'resuming'; sessionId: string; attempt: number; delayMs: number }
  | { type: 'resumed'; sessionId: string; downtimeMs: number; messagesResent: number; attempts: number }
  | { type: 'closed'; sessionId: string; error?: BridgeError }
  /** A tunnel's session ended in a way a new session fixes; `attempt` of starting one, after `delayMs`. */
  | { type: 'replacing'; sessionId: string; attempt: number; delayMs: number; reason: string }
  /** A new session carries the tunnel's connections from now on; those open on the old one were lost. */
  | { type: 'replaced'; sessionId: string; previousSessionId: string; downtimeMs: number; attempts: number; lostConnections: number };

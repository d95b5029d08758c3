import type { BridgeError } from '../errors.js';

/** What a session reports to its user, as a discriminated union (STYLE: state machines). */
export type SessionStatus =
  | { type: 'connected'; sessionId: string; agentVersion: string }
  | { type: 'disconnected'; sessionId: string; reason: string }
  | { type: 'resuming'; sessionId: string; attempt: number; delayMs: number }
  | { type: 'resumed'; sessionId: string; downtimeMs: number; messagesResent: number; attempts: number }
  | { type: 'closed'; sessionId: string; error?: BridgeError };

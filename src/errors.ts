/**
 * Every error ssm-bridge raises on purpose is a BridgeError with a stable `code`.
 * Only cli/ maps codes to exit codes (see README "Exit codes").
 */
export const ErrorCode = {
  /** Malformed bytes or JSON from the peer (SPEC §3). */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
  /** Bad command-line input, config or parameters. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** The SSM API rejected the document or its parameters. */
  INVALID_DOCUMENT: 'INVALID_DOCUMENT',
  /** The target is unknown or its agent is not connected. */
  TARGET_NOT_CONNECTED: 'TARGET_NOT_CONNECTED',
  /** No credentials, or expired / rejected ones. */
  CREDENTIALS: 'CREDENTIALS',
  /** AccessDenied from the SSM API. */
  ACCESS_DENIED: 'ACCESS_DENIED',
  /** Local address or port already in use. */
  PORT_IN_USE: 'PORT_IN_USE',
  /** The agent could not reach the destination port (ConnectToPortError). */
  CONNECT_TO_PORT_ERROR: 'CONNECT_TO_PORT_ERROR',
  /** The service or agent ended the session (channel_closed, TerminateSession flag). */
  SESSION_TERMINATED: 'SESSION_TERMINATED',
  /** The WebSocket dropped and could not be resumed within the resume timeout. */
  RESUME_FAILED: 'RESUME_FAILED',
  /** The data channel is closed; the operation cannot proceed. */
  CHANNEL_CLOSED: 'CHANNEL_CLOSED',
  /** Handshake failed or timed out. */
  HANDSHAKE_FAILED: 'HANDSHAKE_FAILED',
  /** Any other failure of the SSM API or the network. */
  SERVICE_ERROR: 'SERVICE_ERROR',
  /** A timeout elapsed. */
  TIMEOUT: 'TIMEOUT',
  /** The session ended with bytes the agent sent missing (a gap that was never filled). */
  DATA_LOST: 'DATA_LOST',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class BridgeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BridgeError';
    this.code = code;
  }
}

/** Raised by the pure codecs (agent message, JSON payloads, smux frames) for malformed input. */
export class ProtocolError extends BridgeError {
  /** The field that failed validation, e.g. `payloadLength`. */
  readonly field: string;
  /** Byte offset of that field within the input, when it has one. */
  readonly offset: number | undefined;

  constructor(field: string, message: string, offset?: number, options?: { cause?: unknown }) {
    super(ErrorCode.PROTOCOL_ERROR, offset === undefined ? `${field}: ${message}` : `${field} at offset ${offset}: ${message}`, options);
    this.name = 'ProtocolError';
    this.field = field;
    this.offset = offset;
  }
}

export function isBridgeError(err: unknown): err is BridgeError {
  return err instanceof BridgeError;
}

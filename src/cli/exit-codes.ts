import { ErrorCode } from '../errors.js';

/** Exit codes, stable and listed in the README. */
export const ExitCode = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  TARGET_NOT_CONNECTED: 3,
  CREDENTIALS: 4,
  PORT_IN_USE: 5,
  SESSION_TERMINATED: 6,
  RESUME_FAILED: 7,
  PROTOCOL: 8,
  SERVICE: 9,
  CONNECT_TO_PORT: 10,
  DATA_LOST: 11,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.INVALID_ARGUMENT:
    case ErrorCode.INVALID_DOCUMENT:
      return ExitCode.USAGE;
    case ErrorCode.TARGET_NOT_CONNECTED:
      return ExitCode.TARGET_NOT_CONNECTED;
    case ErrorCode.CREDENTIALS:
    case ErrorCode.ACCESS_DENIED:
      return ExitCode.CREDENTIALS;
    case ErrorCode.PORT_IN_USE:
      return ExitCode.PORT_IN_USE;
    case ErrorCode.SESSION_TERMINATED:
    case ErrorCode.CHANNEL_CLOSED:
      return ExitCode.SESSION_TERMINATED;
    case ErrorCode.RESUME_FAILED:
      return ExitCode.RESUME_FAILED;
    case ErrorCode.PROTOCOL_ERROR:
    case ErrorCode.HANDSHAKE_FAILED:
      return ExitCode.PROTOCOL;
    case ErrorCode.SERVICE_ERROR:
    case ErrorCode.TIMEOUT:
      return ExitCode.SERVICE;
    case ErrorCode.CONNECT_TO_PORT_ERROR:
      return ExitCode.CONNECT_TO_PORT;
    case ErrorCode.DATA_LOST:
      return ExitCode.DATA_LOST;
  }
}

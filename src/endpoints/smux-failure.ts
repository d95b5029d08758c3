import { BridgeError, ErrorCode, ProtocolError } from '../errors.js';

/** Why a session ends when its smux session failed under it: a protocol error is exit 8, not a plain end. */
export function smuxFailure(reason: Error | undefined): BridgeError | undefined {
  if (reason === undefined) return undefined;
  if (reason instanceof ProtocolError) return new BridgeError(ErrorCode.PROTOCOL_ERROR, `malformed smux data from the agent: ${reason.message}`, { cause: reason });
  if (reason instanceof BridgeError && reason.code === ErrorCode.PROTOCOL_ERROR) return reason;
  return undefined;
}

export {
  commandName,
  decodeFrame,
  encodeFrame,
  encodeFrameHeader,
  FRAME_HEADER_BYTES,
  FrameParser,
  MAX_FRAME_DATA_BYTES,
  MAX_FRAME_LENGTH,
  SMUX_VERSION,
  SmuxCommand,
  type SmuxFrame,
} from './frame.js';
export { SmuxStream } from './stream.js';
export {
  DEFAULT_MAX_RECEIVE_BUFFER_BYTES,
  DEFAULT_SMUX_KEEPALIVE,
  SmuxSession,
  type SmuxKeepAlive,
  type SmuxSessionOptions,
  type SmuxSessionState,
  type SmuxSessionStats,
} from './session.js';

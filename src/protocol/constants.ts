/** Agent message types on the data channel (SPEC §3), spelled as on the wire. */
export const MessageType = {
  InputStreamData: 'input_stream_data',
  OutputStreamData: 'output_stream_data',
  Acknowledge: 'acknowledge',
  ChannelClosed: 'channel_closed',
  StartPublication: 'start_publication',
  PausePublication: 'pause_publication',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Payload types (SPEC §3). */
export const PayloadType = {
  /** Acknowledge and control messages carry 0. */
  Undefined: 0,
  Output: 1,
  Error: 2,
  Size: 3,
  Parameter: 4,
  HandshakeRequest: 5,
  HandshakeResponse: 6,
  HandshakeComplete: 7,
  EncChallengeRequest: 8,
  EncChallengeResponse: 9,
  Flag: 10,
  StdErr: 11,
  ExitCode: 12,
} as const;
export type PayloadType = (typeof PayloadType)[keyof typeof PayloadType];

/** Header flags (SPEC §3): bit 0 SYN = first message of a stream, bit 1 FIN. */
export const MessageFlags = {
  Data: 0,
  Syn: 1,
  Fin: 2,
  /** Acknowledge and channel_closed messages carry SYN|FIN. */
  Ack: 3,
} as const;

/** Flag payload values (payload type 10, big-endian uint32). */
export const FlagValue = {
  DisconnectToPort: 1,
  TerminateSession: 2,
  ConnectToPortError: 3,
} as const;
export type FlagValue = (typeof FlagValue)[keyof typeof FlagValue];

/** Bytes after the header-length field up to the payload (SPEC §3). */
export const HEADER_LENGTH = 116;
/** Header length field + header + payload length field: the smallest valid message. */
export const MIN_MESSAGE_BYTES = 120;
/** Both official sides put at most this many payload bytes in one stream message (SPEC §5). */
export const MAX_STREAM_PAYLOAD_BYTES = 1024;
/** Upper bound we accept for a payload; far above anything the service sends, well below memory trouble. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** The only schema version in use. */
export const SCHEMA_VERSION = 1;
/**
 * The client version we report. The agent enables smux multiplexing for clients >= 1.1.70 and turns
 * smux keep-alive off for clients newer than 1.2.331.0 (SPEC §2, §7); this is a current official release.
 */
export const CLIENT_VERSION = '1.2.694.0';

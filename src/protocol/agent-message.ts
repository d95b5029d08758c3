import { hash } from 'node:crypto';
import { ProtocolError } from '../errors.js';
import { HEADER_LENGTH, MAX_PAYLOAD_BYTES, MessageType, MIN_MESSAGE_BYTES, SCHEMA_VERSION } from './constants.js';

/** One agent message: the unit in each binary WebSocket frame (SPEC §3). */
export interface AgentMessage {
  messageType: MessageType;
  schemaVersion: number;
  /** Epoch milliseconds. */
  createdDate: number;
  sequenceNumber: number;
  flags: number;
  /** Canonical lowercase UUID string. */
  messageId: string;
  payloadType: number;
  payload: Buffer;
}

/**
 * A message to encode. The id may be given as its 16 bytes in UUID order (byte 0 is the string's first hex
 * pair), which spares the hot path formatting a string only to parse it back.
 */
export type OutgoingAgentMessage = Omit<AgentMessage, 'messageId'> & { messageId: string | Uint8Array };

// Field offsets (SPEC §3).
const OFF_MESSAGE_TYPE = 4;
const MESSAGE_TYPE_BYTES = 32;
const OFF_SCHEMA_VERSION = 36;
const OFF_CREATED_DATE = 40;
const OFF_SEQUENCE_NUMBER = 48;
const OFF_FLAGS = 56;
const OFF_MESSAGE_ID = 64;
const OFF_PAYLOAD_DIGEST = 80;
const OFF_PAYLOAD_TYPE = 112;
const OFF_PAYLOAD_LENGTH = 116;
const OFF_PAYLOAD = 120;
const TWO_POW_32 = 0x1_0000_0000;

/** Space-padded wire spelling of each message type, computed once. */
const PADDED_TYPES = new Map<string, Buffer>(
  Object.values(MessageType).map((t) => [t, Buffer.from(t.padEnd(MESSAGE_TYPE_BYTES, ' '), 'latin1')]),
);
const KNOWN_TYPES = new Set<string>(Object.values(MessageType));

/** SHA-256 of a payload; one-shot hashing is markedly cheaper than createHash() per message. */
function sha256(data: Buffer): string {
  // As a latin1 string (one char per byte): no Buffer, so no ArrayBuffer to allocate and collect per message,
  // which made hashing a small payload twice as expensive.
  return hash('sha256', data, 'binary');
}

/** Encode a message for the wire. Pure: the same input gives the same bytes. */
export function encodeAgentMessage(msg: OutgoingAgentMessage): Buffer {
  const paddedType = PADDED_TYPES.get(msg.messageType);
  if (paddedType === undefined) throw new ProtocolError('messageType', `unknown message type ${JSON.stringify(msg.messageType)}`);
  const payload = msg.payload;
  const out = Buffer.allocUnsafe(OFF_PAYLOAD + payload.length);
  out.writeUInt32BE(HEADER_LENGTH, 0);
  paddedType.copy(out, OFF_MESSAGE_TYPE);
  out.writeUInt32BE(msg.schemaVersion, OFF_SCHEMA_VERSION);
  writeUint64(out, msg.createdDate, OFF_CREATED_DATE, 'createdDate');
  writeInt64(out, msg.sequenceNumber, OFF_SEQUENCE_NUMBER);
  writeUint64(out, msg.flags, OFF_FLAGS, 'flags');
  if (typeof msg.messageId === 'string') writeMessageId(out, msg.messageId, OFF_MESSAGE_ID);
  else writeMessageIdBytes(out, msg.messageId, OFF_MESSAGE_ID);
  out.write(sha256(payload), OFF_PAYLOAD_DIGEST, 32, 'latin1');
  out.writeUInt32BE(msg.payloadType, OFF_PAYLOAD_TYPE);
  out.writeUInt32BE(payload.length, OFF_PAYLOAD_LENGTH);
  payload.copy(out, OFF_PAYLOAD);
  return out;
}

/**
 * Decode and validate one message. Throws ProtocolError naming the field and offset for anything malformed:
 * short input, wrong header length, payload length mismatch, digest mismatch, unknown type.
 * The returned payload is a view into `buf` (no copy).
 */
export function decodeAgentMessage(buf: Buffer): AgentMessage {
  return decodeFields(buf, true) as AgentMessage;
}

/** A message decoded without the type and digest checks: `messageType` is whatever the header says. */
export type LenientAgentMessage = Omit<AgentMessage, 'messageType'> & { messageType: string };

/**
 * Decode one message as the official agent reads it (agentmessage.go Deserialize + Validate): the layout is
 * checked, but neither the payload digest nor the message type, which the agent ignores when it does not know
 * it. For the sandbox's agent; clients use decodeAgentMessage.
 */
export function decodeAgentMessageLenient(buf: Buffer): LenientAgentMessage {
  return decodeFields(buf, false);
}

function decodeFields(buf: Buffer, strict: boolean): LenientAgentMessage {
  if (buf.length < MIN_MESSAGE_BYTES) {
    throw new ProtocolError('message', `${buf.length} bytes is shorter than the ${MIN_MESSAGE_BYTES}-byte minimum`, 0);
  }
  const headerLength = buf.readUInt32BE(0);
  if (headerLength !== HEADER_LENGTH) {
    throw new ProtocolError('headerLength', `expected ${HEADER_LENGTH}, got ${headerLength}`, 0);
  }
  const messageType = strict ? readMessageType(buf) : trimmedMessageType(buf);
  const schemaVersion = buf.readUInt32BE(OFF_SCHEMA_VERSION);
  if (strict && schemaVersion !== SCHEMA_VERSION) {
    throw new ProtocolError('schemaVersion', `expected ${SCHEMA_VERSION}, got ${schemaVersion}`, OFF_SCHEMA_VERSION);
  }
  const createdDate = readUint64(buf, OFF_CREATED_DATE, 'createdDate');
  const sequenceNumber = readInt64(buf, OFF_SEQUENCE_NUMBER);
  const flags = readUint64(buf, OFF_FLAGS, 'flags');
  const messageId = readMessageId(buf, OFF_MESSAGE_ID);
  const payloadType = buf.readUInt32BE(OFF_PAYLOAD_TYPE);
  const payloadLength = buf.readUInt32BE(OFF_PAYLOAD_LENGTH);
  if (payloadLength > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError('payloadLength', `${payloadLength} exceeds the ${MAX_PAYLOAD_BYTES}-byte limit`, OFF_PAYLOAD_LENGTH);
  }
  if (payloadLength !== buf.length - OFF_PAYLOAD) {
    throw new ProtocolError('payloadLength', `says ${payloadLength} bytes but ${buf.length - OFF_PAYLOAD} follow`, OFF_PAYLOAD_LENGTH);
  }
  const payload = buf.subarray(OFF_PAYLOAD);
  if (strict && sha256(payload) !== buf.toString('latin1', OFF_PAYLOAD_DIGEST, OFF_PAYLOAD_DIGEST + 32)) {
    throw new ProtocolError('payloadDigest', 'SHA-256 of the payload does not match', OFF_PAYLOAD_DIGEST);
  }
  return { messageType, schemaVersion, createdDate, sequenceNumber, flags, messageId, payloadType, payload };
}

function trimmedMessageType(buf: Buffer): string {
  let end = OFF_MESSAGE_TYPE + MESSAGE_TYPE_BYTES;
  while (end > OFF_MESSAGE_TYPE && (buf[end - 1] === 0x20 || buf[end - 1] === 0x00)) end--;
  return buf.toString('latin1', OFF_MESSAGE_TYPE, end);
}

function readMessageType(buf: Buffer): MessageType {
  // Trailing spaces and NULs are trimmed (SPEC §3).
  const text = trimmedMessageType(buf);
  if (!KNOWN_TYPES.has(text)) {
    throw new ProtocolError('messageType', `unknown message type ${JSON.stringify(text.slice(0, 32))}`, OFF_MESSAGE_TYPE);
  }
  return text as MessageType;
}

function readUint64(buf: Buffer, offset: number, field: string): number {
  const high = buf.readUInt32BE(offset);
  if (high > 0x1f_ffff) throw new ProtocolError(field, 'value exceeds 2^53', offset);
  return high * TWO_POW_32 + buf.readUInt32BE(offset + 4);
}

function writeUint64(buf: Buffer, value: number, offset: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new ProtocolError(field, `${value} is not an unsigned 53-bit integer`);
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

function readInt64(buf: Buffer, offset: number): number {
  const high = buf.readInt32BE(offset);
  if (high > 0x1f_ffff || high < -0x20_0000) throw new ProtocolError('sequenceNumber', 'value exceeds 2^53', offset);
  return high * TWO_POW_32 + buf.readUInt32BE(offset + 4);
}

function writeInt64(buf: Buffer, value: number, offset: number): void {
  if (!Number.isSafeInteger(value)) throw new ProtocolError('sequenceNumber', `${value} is not a 53-bit integer`);
  const high = Math.floor(value / TWO_POW_32);
  buf.writeInt32BE(high, offset);
  buf.writeUInt32BE(value - high * TWO_POW_32, offset + 4);
}

/** Hex digit values by char code (-1: not a hex digit). */
const HEX_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUES[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUES[0x41 + i] = HEX_VALUES[0x61 + i] = 10 + i;
/** Where each of the UUID's 16 bytes starts in its 36-character string form. */
const UUID_BYTE_POSITIONS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * The wire puts the UUID's bytes 8–15 first, then bytes 0–7 (SPEC §3). Hot path (every message): a table
 * lookup per digit instead of a regex, a replace and two hex writes.
 */
function writeMessageId(buf: Buffer, uuid: string, offset: number): void {
  let invalid = uuid.length !== 36 || uuid[8] !== '-' || uuid[13] !== '-' || uuid[18] !== '-' || uuid[23] !== '-';
  for (let i = 0; i < 16 && !invalid; i++) {
    const pos = UUID_BYTE_POSITIONS[i]!;
    const high = HEX_VALUES[uuid.charCodeAt(pos)] ?? -1;
    const low = HEX_VALUES[uuid.charCodeAt(pos + 1)] ?? -1;
    if (high < 0 || low < 0) invalid = true;
    buf[offset + ((i + 8) & 15)] = (high << 4) | low;
  }
  if (invalid) throw new ProtocolError('messageId', `${JSON.stringify(uuid)} is not a UUID`);
}

function writeMessageIdBytes(buf: Buffer, id: Uint8Array, offset: number): void {
  if (id.length !== 16) throw new ProtocolError('messageId', `${id.length} bytes given, a UUID has 16`);
  for (let i = 0; i < 16; i++) buf[offset + ((i + 8) & 15)] = id[i]!;
}

function readMessageId(buf: Buffer, offset: number): string {
  // UUID bytes 8–15 come first on the wire (hex 0–15), then bytes 0–7 (hex 16–31).
  const hex = buf.toString('hex', offset, offset + 16);
  return `${hex.slice(16, 24)}-${hex.slice(24, 28)}-${hex.slice(28, 32)}-${hex.slice(0, 4)}-${hex.slice(4, 16)}`;
}

import { ProtocolError } from '../errors.js';
import { MessageType } from './constants.js';

/*
 * JSON payloads of the data channel (SPEC §2–§5). Encoders emit keys in the order the official sides do,
 * so the bytes match the golden vectors; decoders validate shapes and throw ProtocolError naming the field.
 */

/** First text frame on every WebSocket (SPEC §2). */
export interface OpenDataChannelInput {
  MessageSchemaVersion: string;
  RequestId: string;
  TokenValue: string;
  ClientId: string;
  ClientVersion: string;
}

export interface AcknowledgeContent {
  AcknowledgedMessageType: MessageType;
  AcknowledgedMessageId: string;
  AcknowledgedMessageSequenceNumber: number;
  IsSequentialMessage: boolean;
}

export interface ChannelClosed {
  MessageId: string;
  CreatedDate: string;
  DestinationId: string;
  SessionId: string;
  MessageType: string;
  SchemaVersion: number;
  Output: string;
}

export const ActionType = {
  SessionType: 'SessionType',
  KMSEncryption: 'KMSEncryption',
} as const;
export type ActionType = (typeof ActionType)[keyof typeof ActionType];

export const ActionStatus = { Success: 1, Failed: 2, Unsupported: 3 } as const;
export type ActionStatus = (typeof ActionStatus)[keyof typeof ActionStatus];

/** Port session properties as the agent sends them (SPEC §1, §4). */
export interface PortSessionProperties {
  portNumber?: string;
  type?: string;
  localPortNumber?: string;
  host?: string;
  [key: string]: unknown;
}

export interface SessionTypeRequest {
  SessionType: string;
  Properties: PortSessionProperties;
}

export interface KmsEncryptionRequest {
  KMSKeyId: string;
}

export interface RequestedClientAction {
  ActionType: string;
  ActionParameters: unknown;
}

export interface HandshakeRequest {
  AgentVersion: string;
  RequestedClientActions: RequestedClientAction[];
}

export interface ProcessedClientAction {
  ActionType: string;
  ActionStatus: ActionStatus;
  ActionResult: unknown;
  Error: string;
}

export interface HandshakeResponse {
  ClientVersion: string;
  ProcessedClientActions: ProcessedClientAction[];
  Errors: string[];
}

export interface HandshakeComplete {
  /** Nanoseconds, as the agent reports it. */
  HandshakeTimeToComplete: number;
  CustomerMessage: string;
}

/** EncChallengeRequest / EncChallengeResponse: the challenge bytes, base64 in JSON. */
export interface EncryptionChallenge {
  Challenge: string;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KNOWN_TYPES = new Set<string>(Object.values(MessageType));

function toJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function parseObject(payload: Buffer | string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    throw new ProtocolError(what, 'payload is not valid JSON', undefined, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError(what, 'payload is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function str(obj: Record<string, unknown>, key: string, what: string, optional = false): string {
  const value = obj[key];
  if (value === undefined || value === null) {
    if (optional) return '';
    throw new ProtocolError(`${what}.${key}`, 'missing');
  }
  if (typeof value !== 'string') throw new ProtocolError(`${what}.${key}`, `expected a string, got ${typeof value}`);
  return value;
}

function num(obj: Record<string, unknown>, key: string, what: string): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ProtocolError(`${what}.${key}`, 'expected a number');
  return value;
}

function arr(obj: Record<string, unknown>, key: string, what: string): unknown[] {
  const value = obj[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ProtocolError(`${what}.${key}`, 'expected an array');
  return value;
}

export function encodeOpenDataChannelInput(input: OpenDataChannelInput): string {
  return JSON.stringify({
    MessageSchemaVersion: input.MessageSchemaVersion,
    RequestId: input.RequestId,
    TokenValue: input.TokenValue,
    ClientId: input.ClientId,
    ClientVersion: input.ClientVersion,
  });
}

export function decodeOpenDataChannelInput(text: string): OpenDataChannelInput {
  const what = 'OpenDataChannelInput';
  const obj = parseObject(text, what);
  return {
    MessageSchemaVersion: str(obj, 'MessageSchemaVersion', what),
    RequestId: str(obj, 'RequestId', what),
    TokenValue: str(obj, 'TokenValue', what),
    ClientId: str(obj, 'ClientId', what, true),
    ClientVersion: str(obj, 'ClientVersion', what, true),
  };
}

/**
 * Hot path: one acknowledge per stream message. A template is several times cheaper than JSON.stringify;
 * every interpolated value is validated (known type, UUID, integer), so no escaping is needed.
 */
export function encodeAcknowledge(ack: AcknowledgeContent): Buffer {
  if (!KNOWN_TYPES.has(ack.AcknowledgedMessageType)) {
    throw new ProtocolError('AcknowledgedMessageType', `unknown message type ${JSON.stringify(ack.AcknowledgedMessageType)}`);
  }
  if (!UUID_PATTERN.test(ack.AcknowledgedMessageId)) throw new ProtocolError('AcknowledgedMessageId', 'not a UUID');
  if (!Number.isSafeInteger(ack.AcknowledgedMessageSequenceNumber)) {
    throw new ProtocolError('AcknowledgedMessageSequenceNumber', 'not an integer');
  }
  return Buffer.from(
    `{"AcknowledgedMessageType":"${ack.AcknowledgedMessageType}","AcknowledgedMessageId":"${ack.AcknowledgedMessageId}",` +
      `"AcknowledgedMessageSequenceNumber":${ack.AcknowledgedMessageSequenceNumber},"IsSequentialMessage":${ack.IsSequentialMessage}}`,
    'latin1',
  );
}

const ACK_TYPE_KEY = Buffer.from('{"AcknowledgedMessageType":"', 'latin1');
const ACK_ID_KEY = Buffer.from('","AcknowledgedMessageId":"', 'latin1');
const ACK_SEQUENCE_KEY = Buffer.from('","AcknowledgedMessageSequenceNumber":', 'latin1');
const ACK_SEQUENTIAL_KEY = Buffer.from(',"IsSequentialMessage":', 'latin1');
const JSON_TRUE_END = Buffer.from('true}', 'latin1');
const JSON_FALSE_END = Buffer.from('false}', 'latin1');

/** Whether `payload` holds `literal` at `offset`. */
function hasAt(payload: Buffer, literal: Buffer, offset: number): boolean {
  if (offset + literal.length > payload.length) return false;
  // A byte loop: for these short literals much cheaper than a call into Buffer.compare.
  for (let i = 0; i < literal.length; i++) if (payload[offset + i] !== literal[i]) return false;
  return true;
}

/** End of a string of plain ASCII (no quote, backslash or control byte) starting at `offset`, or -1. */
function plainStringEnd(payload: Buffer, offset: number): number {
  for (let i = offset; i < payload.length; i++) {
    const b = payload[i]!;
    if (b === 0x22) return i;
    if (b === 0x5c || b < 0x20 || b >= 0x7f) return -1;
  }
  return -1;
}

/**
 * Hot path: one acknowledge per stream message. Reads the canonical compact form (what encodeAcknowledge
 * and the official sides write) straight from the bytes, with the same checks as the JSON path; anything else
 * (whitespace, another key order, escapes, non-ASCII) returns undefined and goes through JSON.parse.
 */
function decodeCanonicalAcknowledge(payload: Buffer): AcknowledgeContent | undefined {
  if (!hasAt(payload, ACK_TYPE_KEY, 0)) return undefined;
  const typeStart = ACK_TYPE_KEY.length;
  const typeEnd = plainStringEnd(payload, typeStart);
  if (typeEnd < 0 || !hasAt(payload, ACK_ID_KEY, typeEnd)) return undefined;
  const type = payload.toString('latin1', typeStart, typeEnd);
  if (!KNOWN_TYPES.has(type)) return undefined;
  const idStart = typeEnd + ACK_ID_KEY.length;
  const idEnd = plainStringEnd(payload, idStart);
  if (idEnd < 0 || !hasAt(payload, ACK_SEQUENCE_KEY, idEnd)) return undefined;
  // A JSON integer: optional minus, no leading zero, at most 16 digits (then a safe-integer check).
  let i = idEnd + ACK_SEQUENCE_KEY.length;
  const negative = payload[i] === 0x2d;
  if (negative) i++;
  const digitsStart = i;
  let sequence = 0;
  while (i < payload.length && payload[i]! >= 0x30 && payload[i]! <= 0x39 && i - digitsStart < 16) sequence = sequence * 10 + (payload[i++]! - 0x30);
  const digits = i - digitsStart;
  if (digits === 0 || (digits > 1 && payload[digitsStart] === 0x30) || !Number.isSafeInteger(sequence)) return undefined;
  if (!hasAt(payload, ACK_SEQUENTIAL_KEY, i)) return undefined;
  i += ACK_SEQUENTIAL_KEY.length;
  let sequential: boolean;
  if (hasAt(payload, JSON_TRUE_END, i) && i + JSON_TRUE_END.length === payload.length) sequential = true;
  else if (hasAt(payload, JSON_FALSE_END, i) && i + JSON_FALSE_END.length === payload.length) sequential = false;
  else return undefined;
  return {
    AcknowledgedMessageType: type as MessageType,
    AcknowledgedMessageId: payload.toString('latin1', idStart, idEnd),
    AcknowledgedMessageSequenceNumber: negative ? -sequence : sequence,
    IsSequentialMessage: sequential,
  };
}

export function decodeAcknowledge(payload: Buffer): AcknowledgeContent {
  const canonical = decodeCanonicalAcknowledge(payload);
  if (canonical !== undefined) return canonical;
  const what = 'Acknowledge';
  const obj = parseObject(payload, what);
  const type = str(obj, 'AcknowledgedMessageType', what);
  if (!KNOWN_TYPES.has(type)) throw new ProtocolError(`${what}.AcknowledgedMessageType`, `unknown message type ${JSON.stringify(type)}`);
  const seq = num(obj, 'AcknowledgedMessageSequenceNumber', what);
  if (!Number.isSafeInteger(seq)) throw new ProtocolError(`${what}.AcknowledgedMessageSequenceNumber`, 'not an integer');
  return {
    AcknowledgedMessageType: type as MessageType,
    AcknowledgedMessageId: str(obj, 'AcknowledgedMessageId', what),
    AcknowledgedMessageSequenceNumber: seq,
    IsSequentialMessage: obj.IsSequentialMessage === true,
  };
}

export function encodeChannelClosed(msg: ChannelClosed): Buffer {
  return toJson({
    MessageId: msg.MessageId,
    CreatedDate: msg.CreatedDate,
    DestinationId: msg.DestinationId,
    SessionId: msg.SessionId,
    MessageType: msg.MessageType,
    SchemaVersion: msg.SchemaVersion,
    Output: msg.Output,
  });
}

export function decodeChannelClosed(payload: Buffer): ChannelClosed {
  const what = 'ChannelClosed';
  const obj = parseObject(payload, what);
  const schema = obj.SchemaVersion;
  return {
    MessageId: str(obj, 'MessageId', what, true),
    CreatedDate: str(obj, 'CreatedDate', what, true),
    DestinationId: str(obj, 'DestinationId', what, true),
    SessionId: str(obj, 'SessionId', what, true),
    MessageType: str(obj, 'MessageType', what, true),
    SchemaVersion: typeof schema === 'number' ? schema : 1,
    Output: str(obj, 'Output', what, true),
  };
}

export function encodeHandshakeRequest(req: HandshakeRequest): Buffer {
  return toJson({
    AgentVersion: req.AgentVersion,
    RequestedClientActions: req.RequestedClientActions.map((a) => ({ ActionType: a.ActionType, ActionParameters: a.ActionParameters })),
  });
}

export function decodeHandshakeRequest(payload: Buffer): HandshakeRequest {
  const what = 'HandshakeRequest';
  const obj = parseObject(payload, what);
  const actions = arr(obj, 'RequestedClientActions', what).map((raw, i) => {
    if (raw === null || typeof raw !== 'object') throw new ProtocolError(`${what}.RequestedClientActions[${i}]`, 'expected an object');
    const action = raw as Record<string, unknown>;
    return { ActionType: str(action, 'ActionType', `${what}.RequestedClientActions[${i}]`), ActionParameters: action.ActionParameters };
  });
  return { AgentVersion: str(obj, 'AgentVersion', what), RequestedClientActions: actions };
}

export function encodeHandshakeResponse(res: HandshakeResponse): Buffer {
  return toJson({
    ClientVersion: res.ClientVersion,
    ProcessedClientActions: res.ProcessedClientActions.map((a) => ({
      ActionType: a.ActionType,
      ActionStatus: a.ActionStatus,
      ActionResult: a.ActionResult ?? null,
      Error: a.Error,
    })),
    Errors: res.Errors,
  });
}

export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  const what = 'HandshakeResponse';
  const obj = parseObject(payload, what);
  const actions = arr(obj, 'ProcessedClientActions', what).map((raw, i) => {
    const where = `${what}.ProcessedClientActions[${i}]`;
    if (raw === null || typeof raw !== 'object') throw new ProtocolError(where, 'expected an object');
    const action = raw as Record<string, unknown>;
    const status = num(action, 'ActionStatus', where);
    if (status !== 1 && status !== 2 && status !== 3) throw new ProtocolError(`${where}.ActionStatus`, `unknown status ${status}`);
    return { ActionType: str(action, 'ActionType', where), ActionStatus: status as ActionStatus, ActionResult: action.ActionResult ?? null, Error: str(action, 'Error', where, true) };
  });
  const errors = arr(obj, 'Errors', what).map((e) => String(e));
  return { ClientVersion: str(obj, 'ClientVersion', what), ProcessedClientActions: actions, Errors: errors };
}

export function encodeHandshakeComplete(msg: HandshakeComplete): Buffer {
  return toJson({ HandshakeTimeToComplete: msg.HandshakeTimeToComplete, CustomerMessage: msg.CustomerMessage });
}

export function decodeHandshakeComplete(payload: Buffer): HandshakeComplete {
  const what = 'HandshakeComplete';
  const obj = parseObject(payload, what);
  const time = obj.HandshakeTimeToComplete;
  return {
    HandshakeTimeToComplete: typeof time === 'number' ? time : 0,
    CustomerMessage: str(obj, 'CustomerMessage', what, true),
  };
}

/** The SessionType action's parameters (SPEC §4). */
export function decodeSessionTypeRequest(params: unknown): SessionTypeRequest {
  const what = 'SessionType';
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ProtocolError(what, 'ActionParameters is not an object');
  const obj = params as Record<string, unknown>;
  const props = obj.Properties;
  if (props !== undefined && props !== null && (typeof props !== 'object' || Array.isArray(props))) {
    throw new ProtocolError(`${what}.Properties`, 'expected an object');
  }
  return { SessionType: str(obj, 'SessionType', what), Properties: (props ?? {}) as PortSessionProperties };
}

export function decodeKmsEncryptionRequest(params: unknown): KmsEncryptionRequest {
  const what = 'KMSEncryption';
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ProtocolError(what, 'ActionParameters is not an object');
  return { KMSKeyId: str(params as Record<string, unknown>, 'KMSKeyId', what) };
}

export function encodeEncryptionChallenge(msg: EncryptionChallenge): Buffer {
  return toJson({ Challenge: msg.Challenge });
}

export function decodeEncryptionChallenge(payload: Buffer): EncryptionChallenge {
  return { Challenge: str(parseObject(payload, 'EncryptionChallenge'), 'Challenge', 'EncryptionChallenge') };
}

/** Flag payloads are one big-endian uint32 (SPEC §3). */
export function encodeFlag(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value, 0);
  return out;
}

export function decodeFlag(payload: Buffer): number {
  if (payload.length !== 4) throw new ProtocolError('Flag', `expected a 4-byte payload, got ${payload.length}`);
  return payload.readUInt32BE(0);
}

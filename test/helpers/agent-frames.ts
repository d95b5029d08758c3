import { randomUUID } from 'node:crypto';
import { encodeAcknowledge, encodeAgentMessage, MessageFlags, MessageType, SCHEMA_VERSION, type AgentMessage } from '../../src/protocol/index.js';

/*
 * Frames for the scripted peers of the tests (raw-data-channel.ts, hostile-service.ts, the property test),
 * built on the codec alone.
 */

/** One stream message: input_stream_data (a client's) or output_stream_data (an agent's, SYN on the first). */
export function streamFrame(messageType: typeof MessageType.InputStreamData | typeof MessageType.OutputStreamData, sequenceNumber: number, payloadType: number, payload: Buffer): Buffer {
  return encodeAgentMessage({
    messageType,
    schemaVersion: SCHEMA_VERSION,
    createdDate: Date.now(),
    sequenceNumber,
    flags: messageType === MessageType.OutputStreamData && sequenceNumber === 0 ? MessageFlags.Syn : MessageFlags.Data,
    messageId: randomUUID(),
    payloadType,
    payload,
  });
}

/** The acknowledge of a received stream message. */
export function ackFrame(msg: Pick<AgentMessage, 'messageType' | 'messageId' | 'sequenceNumber'>): Buffer {
  return encodeAgentMessage({
    messageType: MessageType.Acknowledge,
    schemaVersion: SCHEMA_VERSION,
    createdDate: Date.now(),
    sequenceNumber: 0,
    flags: MessageFlags.Ack,
    messageId: randomUUID(),
    payloadType: 0,
    payload: encodeAcknowledge({ AcknowledgedMessageType: msg.messageType, AcknowledgedMessageId: msg.messageId, AcknowledgedMessageSequenceNumber: msg.sequenceNumber, IsSequentialMessage: true }),
  });
}

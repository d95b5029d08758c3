import { describe, expect, it } from 'vitest';
import { MessageIdPool } from '../../src/channel/message-id-pool.js';
import { decodeAgentMessage, encodeAgentMessage, MessageType } from '../../src/protocol/index.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('MessageIdPool', () => {
  it('gives distinct version-4 UUIDs across refills', () => {
    const pool = new MessageIdPool();
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const frame = encodeAgentMessage({
        messageType: MessageType.Acknowledge,
        schemaVersion: 1,
        createdDate: 0,
        sequenceNumber: 0,
        flags: 3,
        messageId: pool.take(),
        payloadType: 0,
        payload: Buffer.alloc(0),
      });
      const id = decodeAgentMessage(frame).messageId;
      expect(id).toMatch(UUID_V4);
      seen.add(id);
    }
    expect(seen.size).toBe(10_000);
  });
});

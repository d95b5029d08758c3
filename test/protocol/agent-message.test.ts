import { createHash, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import {
  decodeAcknowledge,
  decodeAgentMessage,
  decodeFlag,
  decodeHandshakeResponse,
  encodeAcknowledge,
  encodeAgentMessage,
  encodeFlag,
  encodeHandshakeResponse,
  MessageType,
  type AgentMessage,
} from '../../src/protocol/index.js';
import { loadVectors } from '../helpers/vectors.js';

interface MessageFields {
  messageType: MessageType;
  schemaVersion: number;
  createdDate: number;
  sequenceNumber: number;
  flags: number;
  messageId: string;
  payloadType: number;
  payloadHex: string;
  headerLength: number;
  payloadLength: number;
  payloadDigestHex: string;
}

const vectors = loadVectors<MessageFields>((f) => !f.startsWith('smux-'));

function toMessage(f: MessageFields): AgentMessage {
  return {
    messageType: f.messageType,
    schemaVersion: f.schemaVersion,
    createdDate: f.createdDate,
    sequenceNumber: f.sequenceNumber,
    flags: f.flags,
    messageId: f.messageId,
    payloadType: f.payloadType,
    payload: Buffer.from(f.payloadHex, 'hex'),
  };
}

function sample(overrides: Partial<AgentMessage> = {}): AgentMessage {
  return {
    messageType: MessageType.InputStreamData,
    schemaVersion: 1,
    createdDate: 1763800000000,
    sequenceNumber: 7,
    flags: 0,
    messageId: 'c4d5a7f2-1b3e-4f60-9a8b-0123456789ab',
    payloadType: 1,
    payload: Buffer.from('hello'),
    ...overrides,
  };
}

describe('agent message golden vectors', () => {
  it('has vectors to check', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(7);
  });

  for (const v of vectors) {
    it(`encodes ${v.name} byte for byte`, () => {
      expect(encodeAgentMessage(toMessage(v.fields)).toString('hex')).toBe(v.hex);
    });

    it(`decodes ${v.name} to its fields`, () => {
      const bytes = Buffer.from(v.hex, 'hex');
      const msg = decodeAgentMessage(bytes);
      expect(msg).toEqual(toMessage(v.fields));
      expect(bytes.readUInt32BE(0)).toBe(v.fields.headerLength);
      expect(bytes.readUInt32BE(116)).toBe(v.fields.payloadLength);
      expect(bytes.subarray(80, 112).toString('hex')).toBe(v.fields.payloadDigestHex);
      expect(createHash('sha256').update(msg.payload).digest('hex')).toBe(v.fields.payloadDigestHex);
    });
  }

  it('reproduces the acknowledge payload JSON exactly', () => {
    const v = vectors.find((x) => x.name === 'acknowledge.json')!;
    const payload = encodeAcknowledge({
      AcknowledgedMessageType: MessageType.OutputStreamData,
      AcknowledgedMessageId: 'c4d5a7f2-1b3e-4f60-9a8b-0123456789ab',
      AcknowledgedMessageSequenceNumber: 0,
      IsSequentialMessage: true,
    });
    expect(payload.toString('hex')).toBe(v.fields.payloadHex);
    expect(decodeAcknowledge(payload).AcknowledgedMessageId).toBe('c4d5a7f2-1b3e-4f60-9a8b-0123456789ab');
  });

  it('reproduces the handshake response payload JSON exactly', () => {
    const v = vectors.find((x) => x.name === 'handshake-response.json')!;
    const payload = encodeHandshakeResponse({
      ClientVersion: '1.2.694.0',
      ProcessedClientActions: [{ ActionType: 'SessionType', ActionStatus: 1, ActionResult: null, Error: '' }],
      Errors: [],
    });
    expect(payload.toString('hex')).toBe(v.fields.payloadHex);
    expect(decodeHandshakeResponse(payload).ProcessedClientActions[0]?.ActionStatus).toBe(1);
  });

  it('reproduces flag payloads', () => {
    for (const [name, value] of [['flag-disconnect-to-port.json', 1], ['flag-terminate-session.json', 2], ['flag-connect-to-port-error.json', 3]] as const) {
      const v = vectors.find((x) => x.name === name)!;
      expect(encodeFlag(value).toString('hex')).toBe(v.fields.payloadHex);
      expect(decodeFlag(Buffer.from(v.fields.payloadHex, 'hex'))).toBe(value);
    }
  });
});

describe('agent message validation', () => {
  const good = encodeAgentMessage(sample());

  function expectProtocolError(buf: Buffer, field: string): void {
    try {
      decodeAgentMessage(buf);
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).field).toBe(field);
      return;
    }
    throw new Error(`expected a ProtocolError on ${field}`);
  }

  it('rejects truncated input', () => {
    expectProtocolError(good.subarray(0, 119), 'message');
    expectProtocolError(Buffer.alloc(0), 'message');
  });

  it('rejects a wrong header length', () => {
    const bad = Buffer.from(good);
    bad.writeUInt32BE(112, 0);
    expectProtocolError(bad, 'headerLength');
  });

  it('rejects a payload length that does not match', () => {
    const bad = Buffer.from(good);
    bad.writeUInt32BE(6, 116);
    expectProtocolError(bad, 'payloadLength');
    expectProtocolError(good.subarray(0, good.length - 1), 'payloadLength');
  });

  it('rejects absurd payload lengths', () => {
    const bad = Buffer.from(good);
    bad.writeUInt32BE(0xffffffff, 116);
    expectProtocolError(bad, 'payloadLength');
  });

  it('rejects a digest mismatch', () => {
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 1;
    expectProtocolError(bad, 'payloadDigest');
  });

  it('rejects an unknown message type', () => {
    const bad = Buffer.from(good);
    bad.write('interactive_shell_data          ', 4, 'latin1');
    expectProtocolError(bad, 'messageType');
  });

  it('trims NUL padding of the message type', () => {
    const nulPadded = Buffer.from(good);
    nulPadded.fill(0, 4 + 'input_stream_data'.length, 36);
    expect(decodeAgentMessage(nulPadded).messageType).toBe('input_stream_data');
  });

  it('refuses to encode what cannot be decoded', () => {
    expect(() => encodeAgentMessage(sample({ messageId: 'nope' }))).toThrow(ProtocolError);
    expect(() => encodeAgentMessage(sample({ sequenceNumber: 2 ** 60 }))).toThrow(ProtocolError);
    expect(() => encodeAgentMessage(sample({ messageType: 'bogus' as MessageType }))).toThrow(ProtocolError);
  });

  it('takes the message id as 16 bytes in UUID order, the same wire bytes as its string', () => {
    const id = randomUUID();
    const bytes = Buffer.from(id.replaceAll('-', ''), 'hex');
    const fromBytes = encodeAgentMessage({ ...sample(), messageId: bytes });
    expect(fromBytes.equals(encodeAgentMessage(sample({ messageId: id })))).toBe(true);
    expect(decodeAgentMessage(fromBytes).messageId).toBe(id);
    expect(() => encodeAgentMessage({ ...sample(), messageId: bytes.subarray(0, 15) })).toThrow(/15 bytes given/);
  });

  it('round-trips negative sequence numbers', () => {
    expect(decodeAgentMessage(encodeAgentMessage(sample({ sequenceNumber: -5 }))).sequenceNumber).toBe(-5);
  });
});

describe('agent message properties (fast-check)', () => {
  const arbMessage = fc.record({
    messageType: fc.constantFrom(...Object.values(MessageType)),
    schemaVersion: fc.constant(1),
    createdDate: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    sequenceNumber: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    flags: fc.integer({ min: 0, max: 2 ** 32 }),
    messageId: fc.uuid(),
    payloadType: fc.integer({ min: 0, max: 12 }),
    payload: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
  });

  it('round-trips any valid message', () => {
    fc.assert(
      fc.property(arbMessage, (msg) => {
        const decoded = decodeAgentMessage(encodeAgentMessage(msg));
        expect(decoded).toEqual({ ...msg, messageId: msg.messageId.toLowerCase() });
      }),
      { numRuns: 4000 },
    );
  });

  it('never throws anything but ProtocolError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        try {
          decodeAgentMessage(Buffer.from(bytes));
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 4000 },
    );
  });

  it('never throws anything but ProtocolError on mutated valid messages', () => {
    const base = encodeAgentMessage(sample({ messageId: randomUUID(), payload: Buffer.alloc(64, 7) }));
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: base.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }),
        fc.nat({ max: base.length }),
        (mutations, cut) => {
          const bytes = Buffer.from(base.subarray(0, Math.max(cut, 1)));
          for (const m of mutations) if (m.at < bytes.length) bytes[m.at] = m.value;
          try {
            const msg = decodeAgentMessage(bytes);
            // Only mutations that leave every checked field valid may decode.
            expect(msg.payload.length).toBe(bytes.length - 120);
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 4000 },
    );
  });
});

import { createHash, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import {
  decodeAcknowledge,
  decodeAgentMessage,
  encodeAcknowledge,
  encodeAgentMessage,
  MessageType,
  PayloadType,
  type AcknowledgeContent,
} from '../../src/protocol/index.js';

/*
 * The codec paths the channel runs once per message were rewritten for speed (docs/BENCHMARKS.md):
 * acknowledge decoding reads the canonical form from the bytes, message ids are parsed with a table, and
 * digests are compared as strings. These properties pin them to the plain implementations they replace.
 */

const TYPES = Object.values(MessageType);

/** decodeAcknowledge as it was: JSON.parse, then the same field checks. 'error' where it throws. */
function referenceDecodeAcknowledge(payload: Buffer): AcknowledgeContent | 'error' {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'error';
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'error';
  const o = v as Record<string, unknown>;
  const type = o.AcknowledgedMessageType;
  const seq = o.AcknowledgedMessageSequenceNumber;
  const id = o.AcknowledgedMessageId;
  if (typeof type !== 'string' || !(TYPES as string[]).includes(type)) return 'error';
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return 'error';
  if (typeof id !== 'string') return 'error';
  return { AcknowledgedMessageType: type as MessageType, AcknowledgedMessageId: id, AcknowledgedMessageSequenceNumber: seq, IsSequentialMessage: o.IsSequentialMessage === true };
}

function actualDecodeAcknowledge(payload: Buffer): AcknowledgeContent | 'error' {
  try {
    return decodeAcknowledge(payload);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return 'error';
  }
}

const ack = fc.record({
  AcknowledgedMessageType: fc.constantFrom(...TYPES),
  AcknowledgedMessageId: fc.uuid(),
  AcknowledgedMessageSequenceNumber: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.maxSafeInteger(), fc.maxSafeNat(), fc.integer()),
  IsSequentialMessage: fc.boolean(),
});

describe('acknowledge decoding (hot path)', () => {
  it('decodes every canonical acknowledge exactly as encoded', () => {
    fc.assert(
      fc.property(ack, (a) => {
        expect(decodeAcknowledge(encodeAcknowledge(a))).toEqual(a);
      }),
      { seed: 1, numRuns: 2000 },
    );
  });

  it('decodes the golden acknowledge and JSON variants like JSON.parse would', () => {
    const canonical =
      '{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"c4d5a7f2-1b3e-4f60-9a8b-0123456789ab","AcknowledgedMessageSequenceNumber":0,"IsSequentialMessage":true}';
    const variants = [
      canonical,
      canonical.replace(':0,', ': 0,'),
      canonical.replace('{', '{ '),
      canonical.replace('true}', 'true }'),
      canonical.replace('true}', 'true}\n'),
      canonical.replace(':0,', ':01,'),
      canonical.replace(':0,', ':-0,'),
      canonical.replace(':0,', ':-12,'),
      canonical.replace(':0,', ':1e3,'),
      canonical.replace(':0,', ':1.5,'),
      canonical.replace(':0,', ':9007199254740991,'),
      canonical.replace(':0,', ':9007199254740992,'),
      canonical.replace(':0,', ':12345678901234567,'),
      canonical.replace(':0,', ':"0",'),
      canonical.replace(':0,', ':,'),
      canonical.replace('true}', 'false}'),
      canonical.replace('true}', '1}'),
      canonical.replace('true}', 'tru}'),
      canonical.replace('output_stream_data', 'bogus_type'),
      canonical.replace('output_stream_data', 'output_stream_data '),
      canonical.replace('c4d5a7f2', 'c4d5\\u0061f2'),
      canonical.replace('c4d5a7f2', 'c4d5é7f2'),
      canonical.replace('c4d5a7f2', 'c4d5\u007ff2'),
      canonical.replace('c4d5a7f2', 'c4d5\tf2'),
      canonical.replace('"AcknowledgedMessageId":"c4d5a7f2-1b3e-4f60-9a8b-0123456789ab"', '"AcknowledgedMessageId":null'),
      canonical.replace('"AcknowledgedMessageId":"c4d5a7f2-1b3e-4f60-9a8b-0123456789ab"', '"AcknowledgedMessageId":""'),
      // Another key order (what a map-ordered encoder might write).
      '{"AcknowledgedMessageId":"c4d5a7f2-1b3e-4f60-9a8b-0123456789ab","AcknowledgedMessageSequenceNumber":7,"AcknowledgedMessageType":"input_stream_data","IsSequentialMessage":true}',
      canonical.slice(0, -1),
      canonical + canonical,
      '',
      '{}',
      '[]',
    ];
    for (const text of variants) {
      const payload = Buffer.from(text, 'utf8');
      expect(actualDecodeAcknowledge(payload), text).toEqual(referenceDecodeAcknowledge(payload));
    }
  });

  it('agrees with JSON.parse on mutated acknowledges (property)', () => {
    const mutated = fc
      .tuple(ack, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }))
      .map(([a, edits]) => {
        const bytes = Buffer.from(encodeAcknowledge(a));
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        return bytes;
      });
    fc.assert(
      fc.property(mutated, (payload) => {
        expect(actualDecodeAcknowledge(payload)).toEqual(referenceDecodeAcknowledge(payload));
      }),
      { seed: 2, numRuns: 3000 },
    );
  });
});

describe('message ids and digests (hot path)', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const base = {
    messageType: MessageType.InputStreamData,
    schemaVersion: 1,
    createdDate: 1_700_000_000_000,
    sequenceNumber: 1,
    flags: 0,
    payloadType: PayloadType.Output,
    payload: Buffer.from('x'),
  };

  it('round-trips any UUID, in either case, to its lowercase form', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.boolean(), (id, upper) => {
        const messageId = upper ? id.toUpperCase() : id;
        expect(decodeAgentMessage(encodeAgentMessage({ ...base, messageId })).messageId).toBe(id.toLowerCase());
      }),
      { seed: 3, numRuns: 1000 },
    );
  });

  it('rejects exactly what is not a UUID', () => {
    const chars = fc.constantFrom(...'0123456789abcdefABCDEF-gxz _é'.split(''));
    const nearUuid = fc.oneof(
      fc.array(chars, { minLength: 34, maxLength: 38 }).map((a) => a.join('')),
      fc.tuple(fc.uuid(), fc.nat(35), chars).map(([u, at, c]) => u.slice(0, at) + c + u.slice(at + 1)),
    );
    fc.assert(
      fc.property(nearUuid, (messageId) => {
        let ok = true;
        try {
          encodeAgentMessage({ ...base, messageId });
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
          expect((err as ProtocolError).field).toBe('messageId');
          ok = false;
        }
        expect(ok).toBe(UUID.test(messageId));
      }),
      { seed: 4, numRuns: 3000 },
    );
  });

  it('writes the payload digest and rejects any change to payload or digest', () => {
    const frame = encodeAgentMessage({ ...base, messageId: randomUUID(), payload: Buffer.from('digest me') });
    expect(frame.subarray(80, 112).toString('hex')).toBe(createHash('sha256').update('digest me').digest('hex'));
    expect(decodeAgentMessage(frame).payload.toString()).toBe('digest me');
    for (let at = 80; at < frame.length; at++) {
      if (at >= 112 && at < 120) continue; // payload type and length: other checks
      const bad = Buffer.from(frame);
      bad[at]! ^= 0x01;
      expect(() => decodeAgentMessage(bad)).toThrow(ProtocolError);
    }
  });
});

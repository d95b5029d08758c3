import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import {
  decodeFrame,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameParser,
  MAX_FRAME_LENGTH,
  SMUX_VERSION,
  SmuxCommand,
  type SmuxFrame,
} from '../../src/smux/index.js';
import { loadVectors } from '../helpers/vectors.js';

interface SmuxFields {
  version: number;
  cmd: SmuxCommand;
  streamId: number;
  dataHex: string;
}

const vectors = loadVectors<SmuxFields>((f) => f.startsWith('smux-'));

/** Plain objects, so toEqual compares bytes and not Buffer views. */
function plain(frames: SmuxFrame[]): { cmd: number; streamId: number; dataHex: string }[] {
  return frames.map((f) => ({ cmd: f.cmd, streamId: f.streamId, dataHex: f.data.toString('hex') }));
}

/** Parse `chunks` with one parser; returns the frames and the error, if any. */
function parseChunks(chunks: Buffer[]): { frames: SmuxFrame[]; error: unknown } {
  const frames: SmuxFrame[] = [];
  const parser = new FrameParser((f) => frames.push(f));
  try {
    for (const chunk of chunks) parser.push(chunk);
  } catch (error) {
    return { frames, error };
  }
  return { frames, error: undefined };
}

/** Split `buf` at the given cut points (any order, duplicates allowed; empty chunks included on purpose). */
function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...cuts.map((c) => c % (buf.length + 1))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(buf.subarray(prev, p));
    prev = p;
  }
  chunks.push(buf.subarray(prev));
  return chunks;
}

function bytewise(buf: Buffer): Buffer[] {
  return Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1));
}

const frameArb: fc.Arbitrary<SmuxFrame> = fc
  .record({
    cmd: fc.constantFrom(SmuxCommand.Syn, SmuxCommand.Fin, SmuxCommand.Psh, SmuxCommand.Nop),
    streamId: fc.integer({ min: 0, max: 0xffff_ffff }),
    data: fc.uint8Array({ maxLength: 600 }),
  })
  .map(({ cmd, streamId, data }) => ({ cmd, streamId, data: cmd === SmuxCommand.Psh ? Buffer.from(data) : Buffer.alloc(0) }));

describe('smux golden vectors', () => {
  it('has the four smux vectors', () => {
    expect(vectors.map((v) => v.name).sort()).toEqual(['smux-fin.json', 'smux-nop.json', 'smux-psh.json', 'smux-syn.json']);
  });

  for (const v of vectors) {
    it(`encodes ${v.name} byte for byte`, () => {
      expect(v.fields.version).toBe(SMUX_VERSION);
      const data = Buffer.from(v.fields.dataHex, 'hex');
      expect(encodeFrame({ cmd: v.fields.cmd, streamId: v.fields.streamId, data }).toString('hex')).toBe(v.hex);
    });

    it(`decodes ${v.name} to its fields, whole and one byte at a time`, () => {
      const bytes = Buffer.from(v.hex, 'hex');
      expect(bytes[0]).toBe(v.fields.version);
      const expected = [{ cmd: v.fields.cmd, streamId: v.fields.streamId, dataHex: v.fields.dataHex }];
      expect(plain([decodeFrame(bytes)])).toEqual(expected);
      expect(plain(parseChunks([bytes]).frames)).toEqual(expected);
      expect(plain(parseChunks(bytewise(bytes)).frames)).toEqual(expected);
    });
  }

  it('parses all vectors back to back, in one chunk and one byte at a time', () => {
    const all = Buffer.concat(vectors.map((v) => Buffer.from(v.hex, 'hex')));
    const expected = vectors.map((v) => ({ cmd: v.fields.cmd, streamId: v.fields.streamId, dataHex: v.fields.dataHex }));
    expect(plain(parseChunks([all]).frames)).toEqual(expected);
    expect(plain(parseChunks(bytewise(all)).frames)).toEqual(expected);
  });
});

describe('encodeFrame / decodeFrame', () => {
  it('rejects what cannot be framed', () => {
    expect(() => encodeFrame({ cmd: SmuxCommand.Psh, streamId: -1 })).toThrow(ProtocolError);
    expect(() => encodeFrame({ cmd: SmuxCommand.Psh, streamId: 2 ** 32 })).toThrow(ProtocolError);
    expect(() => encodeFrame({ cmd: SmuxCommand.Psh, streamId: 3, data: Buffer.alloc(MAX_FRAME_LENGTH + 1) })).toThrow(/length/);
    expect(() => encodeFrame({ cmd: SmuxCommand.Syn, streamId: 3, data: Buffer.from('x') })).toThrow(/SYN carries no data/);
    expect(() => encodeFrame({ cmd: 4 as SmuxCommand, streamId: 3 })).toThrow(/cmd/);
    expect(encodeFrame({ cmd: SmuxCommand.Psh, streamId: 0xffff_ffff, data: Buffer.alloc(MAX_FRAME_LENGTH) }).length).toBe(
      FRAME_HEADER_BYTES + MAX_FRAME_LENGTH,
    );
  });

  it('names the field and offset of malformed input', () => {
    const cases: [string, string, number][] = [
      ['0201000003000000', 'version', 0],
      ['0104000003000000', 'cmd', 1], // UPD: smux version 2 only
      ['01ff000003000000', 'cmd', 1],
      ['0100010003000000ff', 'length', 2], // SYN with data
      ['010205000300000001', 'length', 2], // announces 5, carries 1
      ['01020000030000', 'header', 0],
    ];
    for (const [hex, field, offset] of cases) {
      const err = catchError(() => decodeFrame(Buffer.from(hex, 'hex')));
      expect(err, hex).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).field, hex).toBe(field);
      expect((err as ProtocolError).offset, hex).toBe(offset);
      expect((err as ProtocolError).code).toBe('PROTOCOL_ERROR');
    }
    expect(String(catchError(() => decodeFrame(Buffer.from('0104000003000000', 'hex'))))).toMatch(/version 2/);
  });

  it('decodes data as a view, without a copy', () => {
    const bytes = encodeFrame({ cmd: SmuxCommand.Psh, streamId: 3, data: Buffer.from('hello') });
    expect(decodeFrame(bytes).data.buffer).toBe(bytes.buffer);
  });
});

describe('FrameParser', () => {
  it('delivers frames inside one chunk as views and copies only a frame that straddles chunks', () => {
    const a = encodeFrame({ cmd: SmuxCommand.Psh, streamId: 3, data: Buffer.from('first') });
    const b = encodeFrame({ cmd: SmuxCommand.Psh, streamId: 5, data: Buffer.from('second') });
    const chunk1 = Buffer.concat([a, b.subarray(0, 10)]);
    const chunk2 = Buffer.from(b.subarray(10));
    const frames: SmuxFrame[] = [];
    const parser = new FrameParser((f) => frames.push(f));
    parser.push(chunk1);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.data.buffer).toBe(chunk1.buffer);
    expect(parser.bufferedBytes).toBe(10);
    parser.push(chunk2);
    expect(plain(frames)).toEqual([
      { cmd: 2, streamId: 3, dataHex: Buffer.from('first').toString('hex') },
      { cmd: 2, streamId: 5, dataHex: Buffer.from('second').toString('hex') },
    ]);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('uses the next chunk as a view when only the header straddled', () => {
    const frame = encodeFrame({ cmd: SmuxCommand.Psh, streamId: 7, data: Buffer.from('payload') });
    const frames: SmuxFrame[] = [];
    const parser = new FrameParser((f) => frames.push(f));
    parser.push(frame.subarray(0, 5));
    const rest = Buffer.from(frame.subarray(5));
    parser.push(rest);
    expect(frames[0]!.data.toString()).toBe('payload');
    expect(frames[0]!.data.buffer).toBe(rest.buffer);
  });

  it('reports offsets from the first byte pushed, delivers the frames before the bad one, and stays failed', () => {
    const good = encodeFrame({ cmd: SmuxCommand.Psh, streamId: 3, data: Buffer.from('abc') }); // 11 bytes
    const bad = Buffer.from('0102000003000000', 'hex');
    bad[0] = 2;
    const { frames, error } = parseChunks([good.subarray(0, 4), Buffer.concat([good.subarray(4), good]), bad.subarray(0, 3), bad.subarray(3)]);
    expect(frames).toHaveLength(2);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).field).toBe('version');
    expect((error as ProtocolError).offset).toBe(22);

    const frames2: SmuxFrame[] = [];
    const parser = new FrameParser((f) => frames2.push(f));
    expect(() => parser.push(Buffer.from('0105000000000000', 'hex'))).toThrow(ProtocolError);
    expect(() => parser.push(encodeFrame({ cmd: SmuxCommand.Nop, streamId: 0 }))).toThrow(/cmd at offset 1/);
    expect(frames2).toHaveLength(0);
  });

  it('gives the same frames fed whole, one byte at a time and in random splits', () => {
    const frames: SmuxFrame[] = [];
    for (let i = 0; i < 200; i++) {
      const cmd = (i % 4) as SmuxCommand;
      const data = cmd === SmuxCommand.Psh ? Buffer.alloc(i * 37, i) : Buffer.alloc(0);
      frames.push({ cmd, streamId: i * 2 + 1, data });
    }
    const bytes = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const expected = plain(frames);
    expect(plain(parseChunks([bytes]).frames)).toEqual(expected);
    expect(plain(parseChunks(bytewise(bytes)).frames)).toEqual(expected);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const cuts = Array.from({ length: 1 + rand(300) }, () => rand(bytes.length + 1));
      expect(plain(parseChunks(splitAt(bytes, cuts)).frames)).toEqual(expected);
    }
  });
});

describe('smux frames, property-based', () => {
  it('round-trips any frame through encode and decode', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const bytes = encodeFrame(frame);
        expect(bytes.length).toBe(FRAME_HEADER_BYTES + frame.data.length);
        expect(plain([decodeFrame(bytes)])).toEqual(plain([frame]));
      }),
      { numRuns: 1500 },
    );
  });

  it('parses any frame sequence identically whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const { frames: got, error } = parseChunks(splitAt(bytes, cuts));
        expect(error).toBeUndefined();
        expect(plain(got)).toEqual(plain(frames));
      }),
      { numRuns: 800 },
    );
  });

  it('answers random bytes with valid frames or a ProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.array(fc.nat(), { maxLength: 8 }), (raw, cuts) => {
        const bytes = Buffer.from(raw);
        let whole: SmuxFrame | undefined;
        try {
          whole = decodeFrame(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
        if (whole) expect(encodeFrame(whole).equals(bytes)).toBe(true);
        const { frames, error } = parseChunks(splitAt(bytes, cuts));
        if (error !== undefined) expect(error).toBeInstanceOf(ProtocolError);
        for (const f of frames) expect(decodeFrame(encodeFrame(f)).streamId).toBe(f.streamId);
      }),
      { numRuns: 1500 },
    );
  });

  it('answers mutated frame streams the same way in one chunk and in pieces: frames, then at most one ProtocolError', () => {
    const mutation = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 6 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (frames, mutations, cuts) => {
          const bytes = Buffer.from(Buffer.concat(frames.map((f) => encodeFrame(f))));
          for (const m of mutations) bytes[m.at % bytes.length] = m.value;
          const whole = parseChunks([bytes]);
          const pieces = parseChunks(splitAt(bytes, cuts));
          for (const r of [whole, pieces]) {
            if (r.error !== undefined) expect(r.error).toBeInstanceOf(ProtocolError);
            for (const f of r.frames) {
              expect(f.cmd).toBeLessThanOrEqual(SmuxCommand.Nop);
              if (f.cmd !== SmuxCommand.Psh) expect(f.data.length).toBe(0);
            }
          }
          expect(plain(pieces.frames)).toEqual(plain(whole.frames));
          expect((pieces.error as ProtocolError | undefined)?.message).toBe((whole.error as ProtocolError | undefined)?.message);
        },
      ),
      { numRuns: 1500 },
    );
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

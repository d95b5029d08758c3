import { hash, randomBytes, randomUUID } from 'node:crypto';
import { decodeAgentMessage, encodeAgentMessage, MessageFlags, MessageType, PayloadType, SCHEMA_VERSION } from '../../src/protocol/index.js';
import type { BenchRow } from './types.js';

/*
 * The agent message codec on one core: how many 1 KiB stream messages per second it encodes / decodes
 * (SPEC §3; both include one SHA-256 of the payload). Ceiling: the SHA-256 alone.
 */

const PAYLOAD_BYTES = 1024;
const MEASURE_MS = 1000;
const WARMUP_MS = 200;

/** Call `batch` (which does `perBatch` operations) for `ms`; operations per second. */
function opsPerSecond(batch: () => void, perBatch: number, ms: number): number {
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) batch();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    batch();
    ops += perBatch;
    now = performance.now();
  }
  return ops / ((now - start) / 1000);
}

const payload = randomBytes(PAYLOAD_BYTES);
const ids = Array.from({ length: 256 }, () => randomUUID());
const frames = ids.map((messageId, i) =>
  encodeAgentMessage({
    messageType: MessageType.InputStreamData,
    schemaVersion: SCHEMA_VERSION,
    createdDate: Date.now(),
    sequenceNumber: i,
    flags: MessageFlags.Data,
    messageId,
    payloadType: PayloadType.Output,
    payload: randomBytes(PAYLOAD_BYTES),
  }),
);
// Results feed this so no call can be optimised away.
let sink = 0;

export const rows: BenchRow[] = [
  {
    group: 'codec',
    name: 'encode 1 KiB',
    unit: 'msgs/s',
    ceiling: 'ceiling/sha256 1 KiB',
    note: 'encodeAgentMessage, input_stream_data with a 1 KiB payload, one core',
    run: async () => {
      let seq = 0;
      return opsPerSecond(
        () => {
          for (let i = 0; i < ids.length; i++) {
            const frame = encodeAgentMessage({
              messageType: MessageType.InputStreamData,
              schemaVersion: SCHEMA_VERSION,
              createdDate: Date.now(),
              sequenceNumber: seq++,
              flags: MessageFlags.Data,
              messageId: ids[i]!,
              payloadType: PayloadType.Output,
              payload,
            });
            sink += frame.length;
          }
        },
        ids.length,
        MEASURE_MS,
      );
    },
  },
  {
    group: 'codec',
    name: 'decode 1 KiB',
    unit: 'msgs/s',
    ceiling: 'ceiling/sha256 1 KiB',
    note: 'decodeAgentMessage with full validation (lengths, type, digest), one core',
    run: async () =>
      opsPerSecond(
        () => {
          for (let i = 0; i < frames.length; i++) sink += decodeAgentMessage(frames[i]!).sequenceNumber;
        },
        frames.length,
        MEASURE_MS,
      ),
  },
  {
    group: 'ceiling',
    name: 'sha256 1 KiB',
    unit: 'msgs/s',
    note: "crypto.hash('sha256') of a 1 KiB payload, as the codec calls it: the one cost encode and decode cannot avoid",
    run: async () =>
      opsPerSecond(
        () => {
          for (let i = 0; i < 256; i++) sink += hash('sha256', payload, 'binary').length;
        },
        256,
        MEASURE_MS,
      ),
  },
];

/** Keeps `sink` observable. */
export function codecSink(): number {
  return sink;
}

import { randomFillSync } from 'node:crypto';

/** Ids per refill: one random fill every 4,096 messages. */
const IDS_PER_REFILL = 4096;
const ID_BYTES = 16;

/**
 * Random version-4 UUIDs as 16 raw bytes, for the codec to copy straight into a message header. Every
 * message and every ack needs one; `randomUUID()` and parsing its string back took ~7% of the CPU of the
 * side sending acks.
 */
export class MessageIdPool {
  private readonly pool = Buffer.allocUnsafe(IDS_PER_REFILL * ID_BYTES);
  private next = IDS_PER_REFILL;

  /** A fresh id: a view into the pool, valid until the next 4,095 calls (the codec copies it at once). */
  take(): Uint8Array {
    if (this.next === IDS_PER_REFILL) this.refill();
    const start = this.next++ * ID_BYTES;
    return this.pool.subarray(start, start + ID_BYTES);
  }

  private refill(): void {
    randomFillSync(this.pool);
    // RFC 9562 version 4, variant 10xx: what randomUUID() gives and what the agent parses.
    for (let i = 0; i < this.pool.length; i += ID_BYTES) {
      this.pool[i + 6] = (this.pool[i + 6]! & 0x0f) | 0x40;
      this.pool[i + 8] = (this.pool[i + 8]! & 0x3f) | 0x80;
    }
    this.next = 0;
  }
}

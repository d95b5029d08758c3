/**
 * A FIFO of bytes between two parts of the emulated agent, standing for a kernel socket buffer or a Go
 * goroutine handing bytes on: a producer appends, a consumer takes at most N bytes at a time (the agent's
 * 1 KiB reads). `full` says the producer should stop; `waitForSpace` and `waitForData` are the blocking reads
 * and writes of the Go code.
 */
export class ByteQueue {
  private readonly chunks: Buffer[] = [];
  private head = 0;
  private size = 0;
  private ended = false;
  private dataWaiters: Array<() => void> = [];
  private spaceWaiters: Array<() => void> = [];

  constructor(readonly capacityBytes: number) {}

  get bytes(): number {
    return this.size;
  }

  get full(): boolean {
    return this.size >= this.capacityBytes;
  }

  /** No more bytes will come (the producer closed); take() drains what is left, then returns undefined. */
  get done(): boolean {
    return this.ended && this.size === 0;
  }

  push(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake('data');
  }

  end(): void {
    this.ended = true;
    this.wake('data');
    this.wake('space');
  }

  /** Up to `max` bytes from the front, or undefined when empty. */
  take(max: number): Buffer | undefined {
    if (this.size === 0) return undefined;
    const first = this.chunks[this.head]!;
    let out: Buffer;
    if (first.length <= max) {
      out = first;
      this.chunks[this.head++] = undefined as unknown as Buffer;
      if (this.head > 1024 && this.head * 2 > this.chunks.length) {
        this.chunks.splice(0, this.head);
        this.head = 0;
      }
    } else {
      out = first.subarray(0, max);
      this.chunks[this.head] = first.subarray(max);
    }
    this.size -= out.length;
    if (this.size < this.capacityBytes) this.wake('space');
    return out;
  }

  /** Resolves when there are bytes to take, or the queue ended. */
  waitForData(): Promise<void> {
    if (this.size > 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.dataWaiters.push(resolve));
  }

  /** Resolves when the queue is below its capacity (or ended). */
  waitForSpace(): Promise<void> {
    if (!this.full || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  /** Drop everything and wake every waiter (the connection behind it is gone). */
  clear(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.size = 0;
    this.end();
  }

  private wake(which: 'data' | 'space'): void {
    const waiters = which === 'data' ? this.dataWaiters : this.spaceWaiters;
    if (waiters.length === 0) return;
    if (which === 'data') this.dataWaiters = [];
    else this.spaceWaiters = [];
    for (const w of waiters) w();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

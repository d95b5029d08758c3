import type { Writable } from 'node:stream';

/** Resolve when `promise` settles or after `timeoutMs`, whichever is first (never rejects): a bounded wait. */
export async function waitAtMost(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([promise.then(() => undefined, () => undefined), deadline]);
  clearTimeout(timer);
}

/**
 * The write barrier, bounded: true once everything written to `sink` before it was taken by the sink (an empty
 * write's callback runs after every earlier write's), false after `timeoutMs`, or when the sink fails or is
 * gone. Unbounded, it waits for ever behind a sink that no longer drains (a channel whose peer withholds acks).
 */
export async function writeBarrier(sink: Writable, timeoutMs: number): Promise<boolean> {
  if (!sink.writable) return false;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const barrier = new Promise<boolean>((resolve) => sink.write(Buffer.alloc(0), (err) => resolve(!err)));
  try {
    return await Promise.race([barrier, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

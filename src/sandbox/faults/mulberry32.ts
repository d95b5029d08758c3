/**
 * mulberry32: a tiny seeded PRNG (32-bit state) giving uniform numbers in [0, 1). The sandbox draws every
 * fault decision from one, so a run with the same seed and the same traffic makes the same decisions.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARED_VECTORS_DIR, VECTORS_DIR } from '../helpers/vectors.js';

describe('golden vectors copy', () => {
  it.runIf(existsSync(SHARED_VECTORS_DIR))('matches ../shared/protocol/vectors file for file', () => {
    const shared = readdirSync(SHARED_VECTORS_DIR).sort();
    expect(readdirSync(VECTORS_DIR).sort()).toEqual(shared);
    for (const f of shared) expect(readFileSync(join(VECTORS_DIR, f)).equals(readFileSync(join(SHARED_VECTORS_DIR, f))), f).toBe(true);
  });

  it('is there: every golden vector is in test/fixtures/vectors', () => {
    expect(readdirSync(VECTORS_DIR).filter((f) => f.endsWith('.json')).length).toBeGreaterThan(0);
  });
});

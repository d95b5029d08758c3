import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The golden vectors, copied from ../shared/protocol/vectors (beside the checkout) so a clone anywhere has
 * them; test/protocol/vectors-copy.test.ts checks the copy against the original when that is present.
 */
export const VECTORS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/vectors');
export const SHARED_VECTORS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/protocol/vectors');

export interface Vector<F> {
  name: string;
  note: string;
  fields: F;
  hex: string;
}

export function loadVectors<F>(prefix: (name: string) => boolean): Vector<F>[] {
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith('.json') && prefix(f))
    .map((f) => {
      const raw = JSON.parse(readFileSync(join(VECTORS_DIR, f), 'utf8')) as Omit<Vector<F>, 'name'>;
      return { name: f, ...raw };
    });
}

import { mkdtempSync, rmSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listenLocal } from '../../src/endpoints/index.js';

/*
 * The unix socket never exists with a mode another user could connect through, even under umask 000: it is
 * created 0600, not chmod-ed after listen() (issue 15: another user got a connection in 4 of 5 tries).
 */

const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-sock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('local unix socket', () => {
  it('is 0600 from the moment it appears, whatever the umask', async () => {
    const previous = process.umask(0o000);
    try {
      for (let i = 0; i < 5; i++) {
        const path = join(dir, `s${i}.sock`);
        const seen: number[] = [];
        // The watcher stats the file as soon as the directory changes, before listen() has returned.
        const watcher = watch(dir, (_event, name) => {
          if (name !== `s${i}.sock`) return;
          try {
            seen.push(statSync(path).mode & 0o777);
          } catch {
            // gone again
          }
        });
        const listener = await listenLocal({ kind: 'unix', path }, (s) => s.destroy());
        seen.push(statSync(path).mode & 0o777);
        await new Promise((r) => setTimeout(r, 20));
        watcher.close();
        await listener.close();
        expect(seen.length).toBeGreaterThan(0);
        expect(seen.every((m) => m === 0o600)).toBe(true);
      }
    } finally {
      process.umask(previous);
    }
  });
});

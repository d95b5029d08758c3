import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// package.json's `main` (what `import 'ssm-bridge'` loads) must exist after the build and carry the library.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { main: string; types: string };

describe('the package entry', () => {
  it('loads from the built `main` and exports the library', async () => {
    const lib = (await import(resolve(root, pkg.main))) as Record<string, unknown>;
    for (const name of ['PortForwarder', 'startStdioProxy', 'BridgeSession', 'createSsmApi', 'startSandbox', 'BridgeError']) {
      expect(typeof lib[name], name).toBe('function');
    }
    expect(typeof (lib.protocol as Record<string, unknown>).encodeAgentMessage).toBe('function');
    expect(readFileSync(resolve(root, pkg.types), 'utf8')).toContain('PortForwarder');
  });
});

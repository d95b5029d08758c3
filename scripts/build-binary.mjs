#!/usr/bin/env node
// Build ssm-bridge as one executable file with Node's single executable applications (SEA): the CLI bundled into
// one CommonJS script (a SEA runs exactly one script and can require() only Node's built-ins), turned into a
// preparation blob by `node --experimental-sea-config`, injected into a copy of this Node binary with postject.
// Output: dist/binary/ssm-bridge-<platform>-<arch> and its .sha256 (the `sha256sum -c` format). It is built for
// the platform it runs on; the release target is Linux x64.
//   npm run build:binary
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazyDefaultExports } from './bundle-shared.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = resolve(root, 'dist/binary');
const script = resolve(outdir, 'ssm-bridge.cjs');
const blob = resolve(outdir, 'sea-prep.blob');
const binary = resolve(outdir, `ssm-bridge-${process.platform}-${process.arch}`);
const { version } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));

/*
 * ws's optional native helpers: ws require()s them in a try and does without. Left external, that require() reaches
 * the SEA's own, which prints a multi-line warning on stderr before failing; bundled as a module that throws, ws
 * falls back quietly.
 */
const absentOptionalModules = {
  name: 'absent-optional-modules',
  setup(b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: 'absent-optional-module' }));
    b.onLoad({ filter: /.*/, namespace: 'absent-optional-module' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the single executable`)});`,
    }));
  },
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile: script,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  mainFields: ['module', 'main'],
  plugins: [lazyDefaultExports, absentOptionalModules],
  // ES modules in the bundle that read import.meta.url get the executable's own URL.
  define: { SSM_BRIDGE_VERSION: JSON.stringify(version), 'import.meta.url': '__ssmBridgeImportMetaUrl' },
  banner: { js: "const __ssmBridgeImportMetaUrl = require('node:url').pathToFileURL(process.execPath).href;" },
  legalComments: 'none',
  logLevel: 'warning',
});

const seaConfig = resolve(outdir, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true }));
run(process.execPath, ['--experimental-sea-config', seaConfig]);

copyFileSync(process.execPath, binary);
chmodSync(binary, 0o755);
const postject = resolve(root, 'node_modules/postject/dist/cli.js');
const fuse = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'; // Node's documented sentinel for SEA
run(process.execPath, [postject, binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', fuse]);
rmSync(blob);
rmSync(script);
rmSync(seaConfig);

/** Output only when it fails (postject's ELF library warns about every note section it cannot name). */
function run(command, args) {
  const done = spawnSync(command, args, { encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`${basename(args[0])} failed (${done.status ?? done.signal}): ${done.stderr}${done.stdout}`);
}

const digest = createHash('sha256').update(readFileSync(binary)).digest('hex');
writeFileSync(`${binary}.sha256`, `${digest}  ${basename(binary)}\n`);
process.stdout.write(`${binary}\n${digest}\n`);

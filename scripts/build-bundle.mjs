#!/usr/bin/env node
// Bundle the CLI with esbuild into dist/bin/ssm-bridge.mjs (package.json "bin") and its chunks, dist/bin/chunks/:
// a few files to read and compile instead of some 500 modules to resolve, which was most of `ssm-bridge forward`'s
// time before it listens (README, design notes: start-up time). `npm run build` runs this after tsc, which still
// emits dist/src for the library entry and the tests.
//   node scripts/build-bundle.mjs [--analyze]   (--analyze: what each output file is made of)
import { analyzeMetafile, build } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lazyDefaultExports } from './bundle-shared.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = resolve(root, 'dist/bin');
const entry = resolve(outdir, 'ssm-bridge.mjs');
const { version } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));

rmSync(outdir, { recursive: true, force: true }); // chunk names carry hashes: no stale ones
const result = await build({
  absWorkingDir: root,
  entryPoints: { 'ssm-bridge': 'src/cli/main.ts' },
  outdir,
  // Code splitting: each command's dynamic import() becomes a chunk loaded only by that command (`forward`
  // never reads the sandbox or yaml), and, unlike lazily evaluated code in one file, chunks are tree-shaken:
  // of the AWS SDK only the client, our three commands and the credential chain (src/session/aws-sdk.ts).
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // The packages' ES builds first (the AWS SDK's dist-es): those are what tree-shakes.
  mainFields: ['module', 'main'],
  // ws's optional native helpers: used when installed, skipped (by ws's try/require) when not.
  external: ['bufferutil', 'utf-8-validate'],
  // The CommonJS packages (pino, ws) require() Node's built-ins; an ES module has no require of its own.
  // (The `#!/usr/bin/env node` line is src/cli/main.ts's own, which esbuild keeps first.)
  banner: { js: "import { createRequire as __ssmBridgeCreateRequire } from 'node:module';\nconst require = __ssmBridgeCreateRequire(import.meta.url);" },
  // yargs looks for package.json above its own node_modules folder, which the bundle has not.
  define: { SSM_BRIDGE_VERSION: JSON.stringify(version) },
  plugins: [lazyDefaultExports],
  // Not minified: it would not make start-up measurably faster (compiling is not the cost it was), and the
  // stack traces of --log-level debug stay readable.
  legalComments: 'none',
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
});
if (!readFileSync(entry, 'utf8').startsWith('#!/usr/bin/env node\n')) throw new Error(`${entry} does not start with its #! line`);
chmodSync(entry, 0o755);

if (process.argv.includes('--analyze')) process.stdout.write(await analyzeMetafile(result.metafile));

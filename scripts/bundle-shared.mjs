// What the two builds of the CLI share: scripts/build-bundle.mjs (dist/bin, for npm) and scripts/build-binary.mjs
// (one file for a single executable application).
import { dirname } from 'node:path';

/*
 * string-width (yargs's help layout: three copies, of two versions) builds a RegExp of every emoji and an
 * Intl.Segmenter as its module loads: ~60 ms on every start, whether help is shown or not. Its importers get
 * instead a stand-in whose default export loads the real module on its first call (esbuild initializes a
 * require()d ES module lazily). Only for modules whose one export is a default function.
 */
const LAZY_DEFAULT_EXPORTS = new Set(['string-width']);
export const lazyDefaultExports = {
  name: 'lazy-default-exports',
  setup(b) {
    b.onResolve({ filter: /^[\w@][\w@/.-]*$/ }, async (args) => {
      if (!LAZY_DEFAULT_EXPORTS.has(args.path) || args.pluginData?.real) return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { real: true } });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-default-export' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-default-export' }, (args) => ({
      resolveDir: dirname(args.path),
      contents: [
        'let real;',
        'export default function lazyDefaultExport(...args) {',
        `  real ??= require(${JSON.stringify(args.path)}).default;`,
        '  return real(...args);',
        '}',
      ].join('\n'),
    }));
  },
};

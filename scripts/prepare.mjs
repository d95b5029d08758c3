#!/usr/bin/env node
// package.json "prepare": build dist/. npm runs it after `npm ci` / `npm install` in a checkout, and when it
// installs ssm-bridge from a git URL: it clones the repository into a temporary directory, installs the
// devDependencies there, runs this, then packs the result (package.json "files") and installs that.
//
// `npm i -g <git URL>` needs two repairs (npm 10 and 11): the install npm runs in the clone inherits --global, so
//  - it links the global package folder to the clone, which npm deletes once packed; meanwhile the outer install
//    unpacks ssm-bridge's dependencies through that link into the clone, and at the end the package itself, leaving
//    a dangling link. This script first puts an empty folder in place of the link, so they land in the real one;
//  - it installs nothing in the clone (no tsc, no esbuild): this script builds in a copy of the clone in a
//    temporary folder, with the devDependencies installed there from the lock file (a local, not global,
//    install), out of the way of the outer install's writes, and copies dist/ back.
// Plain scripts and Node's built-ins only: nothing else is installed when it starts.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { name } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** npm's clone of a git dependency: <cache>/_cacache/tmp/git-cloneXXXXXX */
const inGitClone = root.includes(`${sep}_cacache${sep}tmp${sep}git-clone`);
const globalInstall = process.env.npm_config_global === 'true';

function npm(args, env = process.env, cwd = root) {
  const npmCli = process.env.npm_execpath;
  const [command, commandArgs] = npmCli && /\.[cm]?js$/.test(npmCli) ? [process.execPath, [npmCli, ...args]] : ['npm', args];
  const done = spawnSync(command, commandArgs, { cwd, env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (done.status !== 0) {
    process.stderr.write(`ssm-bridge prepare: npm ${args.join(' ')} failed (${done.status ?? done.signal})\n`);
    process.exit(1);
  }
}

/** The environment of a local install in this folder: npm's settings minus the inherited global ones. */
function localInstallEnv() {
  const env = { ...process.env };
  for (const key of ['npm_config_global', 'npm_config_location', 'npm_config_prefix', 'npm_config_global_prefix', 'npm_config_local_prefix']) delete env[key];
  return env;
}

/** If the global package folder is a link to this clone, make it a folder again (see above). */
function unlinkGlobalFolder() {
  const prefix = process.env.npm_config_prefix ?? process.env.npm_config_global_prefix;
  if (!prefix) return;
  const folder = join(prefix, process.platform === 'win32' ? '' : 'lib', 'node_modules', name);
  try {
    if (!lstatSync(folder).isSymbolicLink() || realpathSync(folder) !== realpathSync(root)) return;
  } catch {
    return; // no such link
  }
  unlinkSync(folder);
  mkdirSync(folder);
}

if (inGitClone && globalInstall) {
  unlinkGlobalFolder();
  // npm prepares the clone twice (its install, then its pack): the second time, dist/ is already there.
  if (!existsSync(join(root, 'dist/bin/ssm-bridge.mjs'))) {
    const build = mkdtempSync(join(tmpdir(), 'ssm-bridge-build-'));
    try {
      cpSync(root, build, { recursive: true, filter: (from) => !/[\\/](node_modules|\.git|dist)$/.test(from.slice(root.length)) });
      npm(['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund', `--prefix=${build}`], localInstallEnv(), build);
      npm(['run', 'build'], localInstallEnv(), build);
      cpSync(join(build, 'dist'), join(root, 'dist'), { recursive: true });
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  }
} else {
  npm(['run', 'build']);
}

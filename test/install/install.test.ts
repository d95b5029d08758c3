import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PAGE, DEMO_TARGET } from '../../src/sandbox/demo-services.js';
import { REPO_ROOT, sandboxEnv } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';

/*
 * The install paths of README "Install", as a user takes them, each into its own fresh prefix: `npm i -g` from a
 * git URL (a clone of this working tree), `npm i -g` and a project's `npm i` of the `npm pack` tarball, and the
 * single executable (`npm run build:binary`). Each installed command forwards the sandbox's demo page.
 * Slow (npm, tsc and a 100 MB binary): runs in CI (CI is set there) or with SSM_BRIDGE_INSTALL_TESTS=1.
 */
const enabled = Boolean(process.env.CI) || process.env.SSM_BRIDGE_INSTALL_TESTS === '1';
const run = promisify(execFile);
const INSTALL_TIMEOUT_MS = 150_000;

let work: string;
let sandbox: Awaited<ReturnType<typeof startTestSandbox>>;
let tarball: string;

/** npm as the user runs it, without the npm settings of whatever runs the tests (npm test sets npm_config_*). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return env;
}

async function npm(args: string[], cwd: string): Promise<void> {
  try {
    await run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], { cwd, env: npmEnv(), timeout: INSTALL_TIMEOUT_MS, maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** A git repository of this working tree as it is (tracked and new files, not ignored ones), committed. */
async function gitRepoOfWorkingTree(into: string): Promise<string> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(REPO_ROOT, file))) continue; // deleted, not yet committed
    mkdirSync(dirname(join(into, file)), { recursive: true });
    copyFileSync(join(REPO_ROOT, file), join(into, file));
  }
  const git = (...args: string[]) => run('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', ...args], { cwd: into });
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'working tree');
  return `git+file://${into}`;
}

/** Run an installed ssm-bridge `forward` to the demo page, fetch the page through it, stop it. */
async function forwardDemoPage(command: string, prefixArgs: string[] = []): Promise<string> {
  const child = spawn(command, [...prefixArgs, 'forward', DEMO_TARGET, '--remote-port', '80', '--endpoint-url', sandbox.sandbox.endpoint], {
    env: sandboxEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const deadline = Date.now() + 15_000;
    let port: number | undefined;
    while (port === undefined) {
      const m = /Listening on 127\.0\.0\.1:(\d+) -> /.exec(stderr);
      if (m) port = Number(m[1]);
      else if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${command} did not listen (exit ${child.exitCode}):\n${stderr}`);
      else await new Promise((r) => setTimeout(r, 20));
    }
    return await new Promise<string>((res, rej) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (response) => {
        let body = '';
        response.on('data', (d: Buffer) => (body += d.toString('utf8')));
        response.on('end', () => res(body));
      });
      req.on('timeout', () => req.destroy(new Error('no answer through the tunnel in 10 s')));
      req.on('error', rej);
    });
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

describe.skipIf(!enabled)('installing ssm-bridge', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ssm-bridge-install-'));
    sandbox = await startTestSandbox();
    // `npm test` has just built dist/: pack it as it is.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO_ROOT, env: npmEnv(), maxBuffer: 16 << 20 });
    tarball = join(work, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  }, 60_000);

  afterAll(async () => {
    await sandbox?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships only what users need: the bundle, the library, the license', () => {
    const listing = readdirSync(work);
    expect(listing.some((f) => f.endsWith('.tgz'))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    // The library entry's imports (the SDK's signer signs the data-channel upgrade); the CLI's own (yargs, pino,
    // yaml) are in the bundle.
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@aws-sdk/client-ssm', '@aws-sdk/credential-providers', '@smithy/core', '@smithy/signature-v4', 'ws']);
  });

  it('npm i -g <tarball> into a fresh prefix: the command forwards', async () => {
    const prefix = join(work, 'tarball-prefix');
    await npm(['install', '--global', '--prefix', prefix, tarball], work);
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    expect(files).toContain('package/LICENSE');
    expect(files.filter((f) => /^package\/(scripts|test|docs|dist\/scripts|dist\/src\/cli)\/|\.map$/.test(f))).toEqual([]);
    expect(await forwardDemoPage(join(prefix, 'bin/ssm-bridge'))).toBe(DEMO_PAGE);
  }, INSTALL_TIMEOUT_MS);

  it('npm i <tarball> into a project: its bin forwards and the library loads', async () => {
    const project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, type: 'module' }));
    await npm(['install', tarball], project);
    writeFileSync(join(project, 'check.mjs'), "const lib = await import('ssm-bridge'); console.log(typeof lib.PortForwarder, typeof lib.createSsmApi, typeof lib.startSandbox);\n");
    const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: project });
    expect(stdout.trim()).toBe('function function function');
    expect(await forwardDemoPage(join(project, 'node_modules/.bin/ssm-bridge'))).toBe(DEMO_PAGE);
  }, INSTALL_TIMEOUT_MS);

  it('npm i -g <git URL> into a fresh prefix: prepare builds without devDependencies installed, the command forwards', async () => {
    const url = await gitRepoOfWorkingTree(join(work, 'repo'));
    const prefix = join(work, 'git-prefix');
    await npm(['install', '--global', '--prefix', prefix, url], work);
    const installed = join(prefix, 'lib/node_modules/ssm-bridge');
    expect(existsSync(join(installed, 'dist/bin/ssm-bridge.mjs')), 'installed as a folder, not a link to npm\'s deleted clone').toBe(true);
    expect(await forwardDemoPage(join(prefix, 'bin/ssm-bridge'))).toBe(DEMO_PAGE);
  }, INSTALL_TIMEOUT_MS);

  it.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('npm run build:binary: one file with its checksum, which forwards', async () => {
    await npm(['run', 'build:binary'], REPO_ROOT);
    const binary = join(REPO_ROOT, 'dist/binary/ssm-bridge-linux-x64');
    const [digest, name] = readFileSync(`${binary}.sha256`, 'utf8').trim().split(/\s+/);
    expect(name).toBe('ssm-bridge-linux-x64');
    expect(createHash('sha256').update(readFileSync(binary)).digest('hex')).toBe(digest);
    // Moved away from the checkout and its node_modules: it needs nothing but itself.
    const alone = join(work, 'ssm-bridge');
    copyFileSync(binary, alone);
    await run('chmod', ['755', alone]);
    expect(await forwardDemoPage(alone)).toBe(DEMO_PAGE);
  }, INSTALL_TIMEOUT_MS);
});

import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI, as shipped (package.json "bin": the esbuild bundle): `npm test` builds before running vitest. */
export const CLI_PATH = resolve(REPO_ROOT, 'dist/bin/ssm-bridge.mjs');

/** Environment for a CLI run against the sandbox: its key pair, its default region, nothing from the host. */
export function sandboxEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

export interface CliRun {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
}

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore' } = {}): CliRun {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: options.env ?? sandboxEnv(),
    stdio: [options.stdin ?? 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  const exited = new Promise<number>((res) => {
    child.on('exit', (code, signal) => res(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
  return { child, stderr: () => stderr, stdout: () => stdout, exited };
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}

/** Wait until stderr matches, or fail with what it printed. */
export async function waitForStderr(run: CliRun, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = pattern.exec(run.stderr());
    if (m) return m;
    if (run.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${pattern} (exit ${run.child.exitCode}); stderr:\n${run.stderr()}`);
}

/** Start `forward` and wait for its readiness line; returns the local port. */
export async function startForward(args: string[], env?: NodeJS.ProcessEnv): Promise<{ run: CliRun; port: number }> {
  const run = runCli(['forward', ...args], env ? { env } : {});
  const m = await waitForStderr(run, /Listening on 127\.0\.0\.1:(\d+) -> /);
  return { run, port: Number(m[1]) };
}

/** SIGTERM and wait for the exit code, bounded. */
export async function stopCli(run: CliRun, timeoutMs = 10_000): Promise<number> {
  if (run.child.exitCode !== null) return run.child.exitCode;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

import { closeSync, constants, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { chmod, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { BridgeError, ErrorCode } from '../errors.js';

/** The name the AWS CLI (and every tool built on it) runs from PATH. */
export const PLUGIN_NAME = 'session-manager-plugin';

/** The line that marks a shim as ours: install-plugin overwrites and removes only files that carry it. */
export const SHIM_MARKER = 'ssm-bridge install-plugin shim';

/** Where install-plugin writes by default; the README tells users to put it first on PATH. */
export function defaultShimDir(env: NodeJS.ProcessEnv = process.env): string {
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'ssm-bridge', 'bin');
}

/** A shell word in single quotes: nothing inside is expanded. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The shim's text: `exec <ssm-bridge> plugin "$@"`, ssm-bridge named by absolute paths (PATH may change). */
export function shimScript(command: readonly string[]): string {
  return [
    '#!/bin/sh',
    `# ${SHIM_MARKER}: the AWS CLI runs this as session-manager-plugin; ssm-bridge serves Port sessions and`,
    '# hands shells to the official plugin. Remove it with: ssm-bridge install-plugin --uninstall',
    `exec ${command.map(shellQuote).join(' ')} plugin "$@"`,
    '',
  ].join('\n');
}

/** How this process runs ssm-bridge: node and the script, or the single executable alone. */
export function selfCommand(): string[] {
  const script = process.argv[1];
  const exec = realpathSync(process.execPath);
  if (script === undefined) return [exec];
  let scriptPath: string;
  try {
    scriptPath = realpathSync(script);
  } catch {
    scriptPath = resolve(script);
  }
  // A single executable (npm run build:binary) is its own script.
  return scriptPath === exec ? [exec] : [exec, scriptPath];
}

/** Whether the file at `path` is a shim install-plugin wrote (its first 1 KiB carries the marker). */
export function isShim(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY);
    const head = Buffer.alloc(1024);
    const n = readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).toString('latin1').includes(SHIM_MARKER);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function isExecutableFile(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && (process.platform === 'win32' || (st.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

/** Where the official plugin's installers put it (Linux and macOS bundle, the symlink next to it, Homebrew, Windows). */
export const DEFAULT_PLUGIN_PATHS: readonly string[] =
  process.platform === 'win32'
    ? ['C:\\Program Files\\Amazon\\SessionManagerPlugin\\bin\\session-manager-plugin.exe']
    : ['/usr/local/sessionmanagerplugin/bin/session-manager-plugin', '/usr/local/bin/session-manager-plugin', '/opt/homebrew/bin/session-manager-plugin', '/usr/bin/session-manager-plugin'];

/**
 * The official plugin to hand non-Port sessions to: SSM_BRIDGE_FALLBACK_PLUGIN when set (it must be an
 * executable file), else the first `session-manager-plugin` on PATH that is not one of our shims, else the
 * first default install path that has one. Undefined when there is none.
 */
export function findFallbackPlugin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.SSM_BRIDGE_FALLBACK_PLUGIN;
  if (explicit !== undefined && explicit !== '') {
    if (!isExecutableFile(explicit)) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `SSM_BRIDGE_FALLBACK_PLUGIN (${JSON.stringify(explicit)}) is not an executable file; point it at the official session-manager-plugin`);
    if (isShim(explicit)) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `SSM_BRIDGE_FALLBACK_PLUGIN (${JSON.stringify(explicit)}) is ssm-bridge's own shim; point it at the official session-manager-plugin`);
    return explicit;
  }
  const onPath = (env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, process.platform === 'win32' ? 'session-manager-plugin.exe' : 'session-manager-plugin'));
  return [...onPath, ...DEFAULT_PLUGIN_PATHS].find((path) => isExecutableFile(path) && !isShim(path));
}

export interface ShimResult {
  path: string;
  /** What happened: written (new), replaced (an older shim of ours), removed, absent (nothing to remove). */
  action: 'written' | 'replaced' | 'removed' | 'absent';
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Write the shim into `dir` (created if need be). Refuses to overwrite a file that is not one of our shims. */
export async function installShim(dir: string, command: readonly string[]): Promise<ShimResult> {
  // The AWS CLI on Windows runs session-manager-plugin.exe only; a script shim cannot stand in for it.
  if (process.platform === 'win32') throw new BridgeError(ErrorCode.INVALID_ARGUMENT, 'install-plugin writes a shell script shim, which the AWS CLI on Windows cannot run; it is for Linux and macOS');
  const path = join(dir, PLUGIN_NAME);
  const present = await exists(path);
  if (present && !isShim(path)) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${path} exists and was not written by ssm-bridge (the official plugin?); not overwriting it — choose another --dir, or move that file away`);
  }
  await mkdir(dir, { recursive: true });
  // Written beside, then renamed: the AWS CLI running it meanwhile sees the old shim or the new one, never half.
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, shimScript(command), { mode: 0o755 });
    await chmod(temporary, 0o755);
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `could not write ${path}: ${(err as Error).message}`, { cause: err });
  }
  return { path, action: present ? 'replaced' : 'written' };
}

/** Remove our shim from `dir`; refuses to remove a file that is not one of our shims. */
export async function uninstallShim(dir: string): Promise<ShimResult> {
  const path = join(dir, PLUGIN_NAME);
  if (!(await exists(path))) return { path, action: 'absent' };
  if (!isShim(path)) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${path} was not written by ssm-bridge (the official plugin?); not removing it`);
  await rm(path);
  return { path, action: 'removed' };
}

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BridgeError, ErrorCode } from '../errors.js';

/** One listener in the ready file; TCP tunnels carry address and port, unix ones the socket path. */
export interface ReadyTunnel {
  name: string;
  target: string;
  localAddress?: string;
  localPort?: number;
  localSocket?: string;
  /** The session carrying the tunnel now (the first one, when several stripe it). */
  sessionId: string;
  /** With --sessions N > 1: every session striping it. */
  sessionIds?: string[];
}

/** The ready file's content: `{"pid":…,"tunnels":[…]}` (README "In CI"). */
export interface ReadyFileContent {
  pid: number;
  tunnels: ReadyTunnel[];
}

/**
 * Write `content` to `path` atomically: a temporary file in the same directory, then rename, so a reader
 * polling for `path` never sees a partial file.
 */
export async function writeReadyFile(path: string, content: ReadyFileContent): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, `${JSON.stringify(content)}\n`, { mode: 0o644 });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `cannot write the ready file ${path}: ${(err as Error).message}; check --ready-file`, { cause: err });
  }
}

/** Remove a ready file left by an earlier run, so nobody mistakes it for this run's. */
export async function removeReadyFile(path: string): Promise<void> {
  try {
    await rm(path, { force: true });
  } catch (err) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `cannot remove the old ready file ${path}: ${(err as Error).message}; check --ready-file`, { cause: err });
  }
  // Checked now, before any session: a directory that is not there fails the run at once, not once it is up.
  const directory = dirname(path);
  const isDirectory = await stat(directory).then((s) => s.isDirectory(), () => false);
  if (!isDirectory) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `the directory of the ready file ${path} does not exist; check --ready-file`);
}

/** Synchronous removal for `process.on('exit')`: the tunnels are gone, so the file must be too. */
export function removeReadyFileSync(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // best effort while exiting
  }
}

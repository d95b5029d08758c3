import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './sshd.js';

/** The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres, or undefined. */
export function findPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** A throwaway PostgreSQL server on 127.0.0.1 with trust authentication; superuser `postgres`. */
export interface TestPostgres {
  port: number;
  user: string;
  bin: string;
  dir: string;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * postgres refuses to run as root: under root (CI) initdb and postgres run as the `postgres` system user,
 * through `runuser`, in a temp dir chowned to it.
 */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-pg-'));
  try {
    if (process.getuid?.() === 0) {
      const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
      const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
      if (r.status !== 0 || g.status !== 0) throw new Error('running as root, but there is no `postgres` user to run the server as');
      chownSync(dir, Number(r.stdout.trim()), Number(g.stdout.trim()));
    }
    const data = join(dir, 'data');
    const [initCmd, initArgs] = asServerUser(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', timeout: 60_000, cwd: dir });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}${init.error ? ` ${init.error.message}` : ''}`);

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const [cmd, args] = asServerUser(join(bin, 'postgres'), [
        '-D', data,
        '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'unix_socket_directories=',
        '-c', 'fsync=off',
        '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off',
        '-c', 'logging_collector=off',
      ]);
      const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const ready = await waitReady(bin, port, child, () => stderr, 30_000);
      if (ready === 'ready') {
        return {
          port,
          user: 'postgres',
          bin,
          dir,
          stderr: () => stderr,
          stop: async () => {
            await stopServer(child, exited, data);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await stopServer(child, exited, data);
      if (ready === 'exited' && /Address already in use|could not bind/i.test(stderr) && attempt < 5) continue;
      throw new Error(`postgres did not start on 127.0.0.1:${port} (${ready}); stderr:\n${stderr}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Ready once the server says so and pg_isready agrees (the log line alone could come before the socket). */
async function waitReady(bin: string, port: number, child: ChildProcess, stderr: () => string, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    if (/ready to accept connections/.test(stderr())) {
      const r = spawnSync(join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-t', '2'], { timeout: 5_000 });
      if (r.status === 0 && child.exitCode === null) return 'ready';
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return 'timeout';
}

/**
 * Fast shutdown (SIGINT: disconnect clients, stop) sent to the postmaster itself: under runuser the child we
 * hold is runuser, which does not relay SIGINT. Its pid is the first line of postmaster.pid.
 */
async function stopServer(child: ChildProcess, exited: Promise<void>, data: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const postmaster = readPostmasterPid(data);
  try {
    if (postmaster) process.kill(postmaster, 'SIGINT');
    else child.kill('SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
  const timer = setTimeout(() => {
    const pid = readPostmasterPid(data);
    try {
      if (pid) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    child.kill('SIGKILL');
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

function readPostmasterPid(data: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

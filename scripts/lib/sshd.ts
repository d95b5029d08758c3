import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** sshd must be started by absolute path (it re-executes itself). */
export const SSHD_PATH = '/usr/sbin/sshd';

/*
 * A throwaway OpenSSH server on 127.0.0.1, shared by the e2e tests (test/helpers/sshd.ts re-exports it) and
 * the bench's scp rows: under scripts/ so that both tsconfig.json and tsconfig.build.json compile it.
 */

/** A real OpenSSH server on 127.0.0.1 with its own host key and one authorized client key. */
export interface LocalSshd {
  port: number;
  /** The user the client logs in as: whoever runs this process (root in CI). */
  user: string;
  /** Private key the client passes with -i. */
  clientKey: string;
  dir: string;
  /** What sshd printed (-e: logs on stderr). */
  stderr(): string;
  stop(): Promise<void>;
}

/** A port that was free a moment ago: listen on 0, read it, close. The caller retries on collision. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function keygen(path: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ssm-bridge-local', '-f', path], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ssh-keygen failed (${r.status}): ${r.stderr}`);
}

export async function startSshd(): Promise<LocalSshd> {
  if (!existsSync(SSHD_PATH)) throw new Error(`${SSHD_PATH} not found: install openssh-server`);
  const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-sshd-'));
  try {
    const isRoot = process.getuid?.() === 0;
    // Privilege separation needs this directory when sshd runs as root.
    if (isRoot) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const hostKey = join(dir, 'host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    keygen(hostKey);
    keygen(clientKey);
    const authorizedKeys = join(dir, 'authorized_keys');
    copyFileSync(`${clientKey}.pub`, authorizedKeys);

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = join(dir, 'sshd_config');
      writeFileSync(
        config,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${hostKey}`,
          `PidFile ${join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PermitRootLogin yes',
          'StrictModes no',
          'UsePAM no',
          'UseDNS no',
          'PrintMotd no',
          'PrintLastLog no',
          'PermitTTY yes',
          // Built into sshd: scp's default (SFTP) protocol works without a path to sftp-server.
          'Subsystem sftp internal-sftp',
          'LogLevel ERROR',
          '',
        ].join('\n'),
      );
      const child = spawn(SSHD_PATH, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const ready = await waitForBanner(port, child, 10_000);
      if (ready === 'ready') {
        return {
          port,
          user: userInfo().username,
          clientKey,
          dir,
          stderr: () => stderr,
          stop: async () => {
            await stopChild(child, exited);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await stopChild(child, exited);
      if (ready === 'exited' && /Address already in use/i.test(stderr) && attempt < 5) continue;
      throw new Error(`sshd did not start on 127.0.0.1:${port} (${ready}); stderr:\n${stderr}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Ready when a connection on the port gets an SSH banner while our sshd still runs: a bare TCP accept could
 * come from whoever took the port after our sshd failed to bind it.
 */
async function waitForBanner(port: number, child: ChildProcess, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    const banner = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      let got = '';
      const finish = (): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      };
      const timer = setTimeout(finish, 1_000);
      socket.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\n')) finish();
      });
      socket.on('error', finish);
      socket.on('close', finish);
    });
    if (banner.startsWith('SSH-2.0-') && child.exitCode === null) return 'ready';
    await new Promise((r) => setTimeout(r, 50));
  }
  return 'timeout';
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Options shared by ssh and scp against a LocalSshd: its key, a throwaway known_hosts, nothing from ~/.ssh,
 * and either `proxyCommand` (argv, quoted here; ssh expands %h and %p in it) or a direct connection to `port`.
 */
export function sshClientOptions(sshd: LocalSshd, via: { proxyCommand: string[] } | { port: number }): string[] {
  const route = 'proxyCommand' in via ? `ProxyCommand=${via.proxyCommand.map(shellQuote).join(' ')}` : `Port=${via.port}`;
  return [
    '-F', '/dev/null',
    '-o', route,
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
    '-i', sshd.clientKey,
  ];
}

/** ssh runs ProxyCommand through a shell. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeReadyFile, removeReadyFile } from '../../src/cli/ready-file.js';
import { commandFromArgs, signalExitStatus, tunnelEnv } from '../../src/cli/run-command.js';
import { formatBytes, statsIntervalFromArgs } from '../../src/cli/stats.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the environment of the command', () => {
  const db = { name: 'read-db', target: 'i-1', sessionId: 's-1', endpoint: { kind: 'tcp', address: '127.0.0.1', port: 5432 } } as const;
  const cache = { name: 'cache', target: 'i-2', sessionId: 's-2', endpoint: { kind: 'unix', path: '/tmp/c.sock' } } as const;

  it('forward: unprefixed variables', () => {
    expect(tunnelEnv([db], false)).toEqual({ SSM_BRIDGE_LOCAL_ADDRESS: '127.0.0.1', SSM_BRIDGE_LOCAL_PORT: '5432', SSM_BRIDGE_SESSION_ID: 's-1', SSM_BRIDGE_TARGET: 'i-1' });
    expect(tunnelEnv([cache], false)).toEqual({ SSM_BRIDGE_LOCAL_SOCKET: '/tmp/c.sock', SSM_BRIDGE_SESSION_ID: 's-2', SSM_BRIDGE_TARGET: 'i-2' });
  });

  it('up: per tunnel, the list of names, and no unprefixed ones for several tunnels', () => {
    expect(tunnelEnv([db, cache], true)).toEqual({
      SSM_BRIDGE_TUNNELS: 'read-db,cache',
      SSM_BRIDGE_READ_DB_LOCAL_ADDRESS: '127.0.0.1',
      SSM_BRIDGE_READ_DB_LOCAL_PORT: '5432',
      SSM_BRIDGE_READ_DB_SESSION_ID: 's-1',
      SSM_BRIDGE_READ_DB_TARGET: 'i-1',
      SSM_BRIDGE_CACHE_LOCAL_SOCKET: '/tmp/c.sock',
      SSM_BRIDGE_CACHE_SESSION_ID: 's-2',
      SSM_BRIDGE_CACHE_TARGET: 'i-2',
    });
    expect(tunnelEnv([db], true)).toMatchObject({ SSM_BRIDGE_READ_DB_LOCAL_PORT: '5432', SSM_BRIDGE_LOCAL_PORT: '5432' });
  });

  it('exit statuses and the command after --', () => {
    expect(signalExitStatus('SIGTERM')).toBe(143);
    expect(signalExitStatus('SIGINT')).toBe(130);
    expect(signalExitStatus('SIGHUP')).toBe(129);
    expect(commandFromArgs(undefined)).toBeUndefined();
    expect(commandFromArgs(['psql', '-c', 1])).toEqual(['psql', '-c', '1']);
    expect(() => commandFromArgs([])).toThrow(/nothing follows "--"/);
  });
});

describe('the ready file and stats options', () => {
  it('is written whole, by rename, leaving no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-ready-'));
    dirs.push(dir);
    const path = join(dir, 'ready.json');
    writeFileSync(path, 'stale');
    await removeReadyFile(path);
    expect(readdirSync(dir)).toEqual([]);
    const content = { pid: 1, tunnels: [{ name: 'a', target: 'i-1', localAddress: '127.0.0.1', localPort: 1, sessionId: 's' }] };
    await writeReadyFile(path, content);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(content);
    expect(readdirSync(dir)).toEqual(['ready.json']);
    await expect(writeReadyFile(join(dir, 'no', 'such', 'dir.json'), content)).rejects.toThrow(/cannot write the ready file .*; check --ready-file/);
  });

  it('parses --stats-interval and formats bytes', () => {
    expect(statsIntervalFromArgs(undefined)).toBeUndefined();
    expect(statsIntervalFromArgs('0')).toBeUndefined();
    expect(statsIntervalFromArgs('250ms')).toBe(250);
    expect(statsIntervalFromArgs('30s')).toBe(30_000);
    expect(() => statsIntervalFromArgs('often')).toThrow(/--stats-interval must be a duration/);
    expect(formatBytes(100)).toBe('100 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(8 * 1024 * 1024)).toBe('8.0 MiB');
  });
});

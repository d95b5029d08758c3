import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { findPostgresBin, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startTestSandbox } from '../helpers/sandbox.js';
import { within } from '../helpers/servers.js';

const TARGET = 'i-0postgres00000001';
const ROWS = 10_000;

const bin = findPostgresBin();
// CI installs postgresql (.ci/run): there a missing server is a broken setup, not a reason to skip.
if (!bin && process.env.CI) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin, but CI must run this file');
const title = bin
  ? 'psql through `forward` to a real PostgreSQL server'
  : 'psql through `forward` to a real PostgreSQL server (skipped: no initdb/postgres under /usr/lib/postgresql/*/bin; install postgresql)';

describe.skipIf(!bin)(title, () => {
  let pg: TestPostgres;
  let env: Awaited<ReturnType<typeof startTestSandbox>>;
  let forward: CliRun;
  let localPort: number;

  beforeAll(async () => {
    pg = await startPostgres();
    env = await startTestSandbox({ [TARGET]: { ports: { '5432': `127.0.0.1:${pg.port}` } } });
    const f = await startForward([TARGET, '--remote-port', '5432', '--endpoint-url', env.sandbox.endpoint]);
    forward = f.run;
    localPort = f.port;
  });

  afterAll(async () => {
    if (forward) await stopCli(forward);
    await env?.close();
    await pg?.stop();
  });

  /** One psql run against the forwarded port: a new connection, so a new stream through the session. */
  async function psql(args: string[], stdin = ''): Promise<string> {
    const child = spawn(join(bin!, 'psql'), ['-h', '127.0.0.1', '-p', String(localPort), '-U', pg.user, '-d', 'postgres', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args], {
      env: { PATH: process.env.PATH, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable', PGAPPNAME: 'ssm-bridge-e2e' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
    const status = await within(
      new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))),
      30_000,
      `psql ${args.join(' ')}`,
    ).catch((e: unknown) => {
      child.kill('SIGKILL');
      throw e;
    });
    if (status !== 0) throw new Error(`psql ${args.join(' ')} exited ${status}: ${err}`);
    return Buffer.concat(out).toString('utf8');
  }

  it(`creates a table, copies in ${ROWS.toLocaleString('en')} rows and reads them back intact`, async () => {
    // Text-format COPY rows: no tabs, newlines or backslashes in the values; some multi-byte UTF-8.
    const rows = Array.from({ length: ROWS }, (_, i) => {
      const id = i + 1;
      const name = `row-${id}-ünïcødé-${randomBytes(12).toString('hex')}`;
      const amount = randomBytes(4).readUInt32BE(0) * 1000 + id;
      return { id, name, amount };
    });
    const lines = rows.map((r) => `${r.id}\t${r.name}\t${r.amount}`);
    const expectedSum = rows.reduce((s, r) => s + BigInt(r.amount), 0n);
    const expectedMd5 = createHash('md5')
      .update(rows.map((r) => `${r.id}:${r.name}:${r.amount}`).join('\n'), 'utf8')
      .digest('hex');

    await psql(['-c', 'CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, amount bigint NOT NULL)']);
    await psql(['-c', '\\copy items (id, name, amount) from pstdin'], `${lines.join('\n')}\n`);

    const summary = await psql(['-F', '|', '-c', "SELECT count(*), sum(amount), md5(string_agg(id || ':' || name || ':' || amount, E'\\n' ORDER BY id)) FROM items"]);
    expect(summary.trim()).toBe(`${ROWS}|${expectedSum}|${expectedMd5}`);

    // Every row back, byte for byte, in the same text format.
    const copiedOut = await psql(['-c', '\\copy (SELECT id, name, amount FROM items ORDER BY id) to pstdout']);
    expect(createHash('sha256').update(copiedOut).digest('hex')).toBe(createHash('sha256').update(`${lines.join('\n')}\n`).digest('hex'));
    expect(copiedOut.split('\n')).toHaveLength(ROWS + 1);

    // One forward served every connection and is still up.
    expect(forward.child.exitCode).toBeNull();
  });
});

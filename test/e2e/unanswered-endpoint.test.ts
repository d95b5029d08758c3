import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { within } from '../helpers/servers.js';

/*
 * An SSM endpoint that accepts connections and never answers (a wrong --endpoint-url, a half-dead proxy):
 * StartSession has a deadline, and a signal during the wait ends the process within seconds (issue 15).
 */

let silent: net.Server;
let endpoint = '';
const held: net.Socket[] = [];

beforeAll(async () => {
  silent = net.createServer((socket) => {
    held.push(socket);
    socket.on('error', () => {});
    socket.resume(); // read the request, answer nothing
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise((r) => silent?.close(r));
});

describe('an endpoint that never answers StartSession', () => {
  it('forward exits 9 within 90 s with exactly one line on stderr', async () => {
    const started = Date.now();
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', endpoint]);
    const code = await within(run.exited, 90_000, 'forward to give up');
    expect(code).toBe(9);
    expect(Date.now() - started).toBeLessThan(90_000);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ssm-bridge: StartSession got no answer within 30 s; check --endpoint-url/);
  }, 100_000);

  it('one SIGTERM during the wait ends the process within 5 s', async () => {
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', endpoint]);
    await new Promise((r) => setTimeout(r, 1_500));
    const signalledAt = Date.now();
    run.child.kill('SIGTERM');
    const code = await within(run.exited, 6_000, 'forward to exit after SIGTERM');
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(code).toBe(0);
  }, 20_000);
});


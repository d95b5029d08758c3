import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startForward, stopCli, waitForStderr, type CliRun } from '../helpers/cli.js';
import { startHostileService, type HostileService } from '../helpers/hostile-service.js';
import { within } from '../helpers/servers.js';

/*
 * The CLI against an SSM API that never answers a call, or answers with hostile text (issue 15): every call has
 * a deadline, and one signal or one failure ends the process within seconds with the documented code.
 */

const LPF = { portNumber: '80', type: 'LocalPortForwarding' };
const FORWARD = ['forward', 'i-0123456789abcdef0', '--remote-port', '80'];
let service: HostileService | undefined;
const runs: CliRun[] = [];

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
  await service?.close();
  service = undefined;
});

async function timedExit(run: CliRun, boundMs: number): Promise<{ code: number; ms: number }> {
  const started = Date.now();
  const code = await within(run.exited, boundMs, 'the CLI to exit');
  return { code, ms: Date.now() - started };
}

describe('a replacement session that never completes its handshake', () => {
  it('SIGTERM while it starts: the start is aborted and that session terminated (not left open on the service), exit 0', async () => {
    let secondOpen = false;
    service = await startHostileService({
      async onConnection(peer, index) {
        if (index === 0) {
          await peer.handshake(LPF);
          // The service ends the first session: forward starts a replacement.
          setTimeout(() => peer.closeChannel('Session expired'), 200);
        } else secondOpen = true; // and no handshake, ever
      },
    });
    const { run } = await startForward([...FORWARD.slice(1), '--endpoint-url', service.endpoint]);
    runs.push(run);
    const deadline = Date.now() + 10_000;
    while (!secondOpen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(secondOpen).toBe(true);
    expect(service.calls.filter((c) => c === 'StartSession')).toHaveLength(2);
    run.child.kill('SIGTERM');
    const { code, ms } = await timedExit(run, 15_000);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(8_000);
    expect(service.calls.slice(service.calls.lastIndexOf('StartSession'))).toContain('TerminateSession');
  });
});

describe('an API that never answers', () => {
  it('TerminateSession on SIGTERM: exit 0 within 8 s all the same', async () => {
    service = await startHostileService({ answer: (action) => (action === 'TerminateSession' ? 'hang' : undefined), onConnection: (peer) => peer.handshake(LPF) });
    const { run } = await startForward([...FORWARD.slice(1), '--endpoint-url', service.endpoint]);
    runs.push(run);
    run.child.kill('SIGTERM');
    const { code, ms } = await timedExit(run, 15_000);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(8_000);
    expect(service.calls).toContain('TerminateSession');
  });

  it('TerminateSession in the start-failure cleanup (a document forward cannot use): exit 2 within 8 s', async () => {
    service = await startHostileService({
      answer: (action) => (action === 'TerminateSession' ? 'hang' : undefined),
      onConnection: (peer) => peer.handshake({}, '3.3.2746.0').catch(() => {}),
    });
    // A Port session without a port-forwarding type, under forward: refused after the handshake, before listening.
    const run = runCli([...FORWARD, '--endpoint-url', service.endpoint]);
    runs.push(run);
    const { code, ms } = await timedExit(run, 15_000);
    expect(code).toBe(2);
    expect(ms).toBeLessThan(8_000);
    expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
  });

  it('ResumeSession after a drop: --resume-timeout still bounds the outage, exit 7', async () => {
    service = await startHostileService({
      answer: (action) => (action === 'ResumeSession' || action === 'TerminateSession' ? 'hang' : undefined),
      async onConnection(peer) {
        await peer.handshake(LPF);
        setTimeout(() => peer.ws.terminate(), 200);
      },
    });
    const { run } = await startForward([...FORWARD.slice(1), '--endpoint-url', service.endpoint, '--resume-timeout', '3s', '--no-reconnect']);
    runs.push(run);
    const { code, ms } = await timedExit(run, 20_000);
    expect(code).toBe(7);
    // 3 s of outage, then the bounded TerminateSession (5 s).
    expect(ms).toBeLessThan(10_000);
    expect(run.stderr().trim().split('\n').at(-1)).toMatch(/^ssm-bridge: could not resume session hostile-1 within 3 s; last error: ResumeSession got no answer/);
  });
});

describe('a service that withholds every ack', () => {
  it('forward -- <command>: the command ends with 4 MiB queued; the session is terminated and its status returned within seconds', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        peer.acks = false;
      },
    });
    const writer = `const s=require('net').connect(+process.env.SSM_BRIDGE_LOCAL_PORT,'127.0.0.1');s.on('error',()=>{});s.write(Buffer.alloc(4<<20));setTimeout(()=>process.exit(3),1000);`;
    const run = runCli([...FORWARD, '--endpoint-url', service.endpoint, '--', process.execPath, '-e', writer]);
    runs.push(run);
    const { code, ms } = await timedExit(run, 20_000);
    expect(code).toBe(3);
    expect(ms).toBeLessThan(8_000);
    expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
  });
});

describe('API errors', () => {
  it('control characters in an error message from the service reach the terminal escaped, on one line', async () => {
    service = await startHostileService({
      answer: (action) => (action === 'StartSession' ? { status: 400, body: { __type: 'ValidationException', message: 'bad\u001b[2J\u0007\nssm-bridge: forged line' } } : undefined),
      onConnection() {},
    });
    const run = runCli([...FORWARD, '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect((await timedExit(run, 15_000)).code).toBe(2);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('bad\\x1b[2J\\x07\\x0assm-bridge: forged line');
    expect(run.stderr()).not.toMatch(/[\u001b\u0007]/);
  });

  it.each([
    ['no token or stream URL', { SessionId: 'hostile-1' }, /StartSession returned no session id, token or stream URL/],
    ['a body that is not JSON', '<html>\u001b[31mproxy error', /StartSession failed/],
  ])('StartSession answered 200 with %s: exit 9, one line', async (_name, body, pattern) => {
    service = await startHostileService({ answer: (action) => (action === 'StartSession' ? { status: 200, body } : undefined), onConnection() {} });
    const run = runCli([...FORWARD, '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect((await timedExit(run, 30_000)).code).toBe(9);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(run.stderr()).not.toMatch(/[\u001b]/);
  });

  it('the WebSocket upgrade answered with bytes that are not HTTP: exit 9, one line', async () => {
    service = await startHostileService({ refuseUpgrade: () => Buffer.from('\u0000\u001b[2Jgarbage\r\n\r\n'), onConnection() {} });
    const run = runCli([...FORWARD, '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect((await timedExit(run, 30_000)).code).toBe(9);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ssm-bridge: could not open the data channel to 127\.0\.0\.1:\d+/);
  });

  it.each([
    ['TargetNotConnected', 3],
    ['AccessDeniedException', 4],
    ['ThrottlingException', 9],
  ])('StartSession answered %s: exit %i, one line', async (type, expected) => {
    service = await startHostileService({ answer: (action) => (action === 'StartSession' ? { status: 400, body: { __type: type, message: 'no' } } : undefined), onConnection() {} });
    const run = runCli([...FORWARD, '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect((await timedExit(run, 30_000)).code).toBe(expected);
    expect(run.stderr().trim().split('\n')).toHaveLength(1);
  });
});

describe('text from a tunnels file', () => {
  it('control characters in a remoteHost reach the terminal escaped in the readiness line', async () => {
    service = await startHostileService({ onConnection: (peer) => peer.handshake(LPF) });
    const dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-hostile-'));
    try {
      const file = join(dir, 'tunnels.yaml');
      writeFileSync(file, `endpointUrl: ${service.endpoint}\ntunnels:\n  - name: db\n    target: i-0123456789abcdef0\n    remoteHost: "db\\e[2J\\a.internal"\n    remotePort: 5432\n`);
      const run = runCli(['up', '-f', file]);
      runs.push(run);
      await waitForStderr(run, /^Listening on /m);
      expect(run.stderr()).toMatch(/^Listening on 127\.0\.0\.1:\d+ -> db\\x1b\[2J\\x07\.internal:5432/m);
      expect(run.stderr()).not.toMatch(/[\u001b\u0007]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the agent could not connect to the destination', () => {
  it('proxy over a stream-mode document, channel_closed with a reason before any data: exit 10 with the reason', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake({ portNumber: '22' });
        setTimeout(() => peer.closeChannel('connection refused'), 50);
      },
    });
    const run = runCli(['proxy', 'i-0123456789abcdef0', '--endpoint-url', service.endpoint], { stdin: 'pipe' });
    runs.push(run);
    expect((await timedExit(run, 15_000)).code).toBe(10);
    expect(run.stderr().trim().split('\n')).toEqual([expect.stringMatching(/^ssm-bridge: the agent could not connect to port 22 on i-0123456789abcdef0: connection refused$/)]);
  });
});

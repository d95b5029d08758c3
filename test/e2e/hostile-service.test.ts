import { afterEach, describe, expect, it } from 'vitest';
import { encodeAgentMessage, encodeFlag, encodeHandshakeRequest, FlagValue, MessageFlags, MessageType, PayloadType, SCHEMA_VERSION } from '../../src/protocol/index.js';
import { encodeFrame, SmuxCommand } from '../../src/smux/frame.js';
import { runCli, startForward, stopCli, type CliRun } from '../helpers/cli.js';
import { startHostileService, type HostileService } from '../helpers/hostile-service.js';
import { within } from '../helpers/servers.js';
import net from 'node:net';

/* The CLI against a service that misbehaves on purpose (test/helpers/hostile-service.ts): issue 15's defects. */

const LPF = { portNumber: '80', type: 'LocalPortForwarding' };
let service: HostileService | undefined;
const runs: CliRun[] = [];

afterEach(async () => {
  await Promise.all(runs.splice(0).map((r) => stopCli(r)));
  await service?.close();
  service = undefined;
});

async function exitOf(run: CliRun): Promise<number> {
  return within(run.exited, 20_000, 'the CLI to exit');
}

describe('a hostile service', () => {
  it('forward: a malformed smux frame ends it with exit 8 (not 6), after TerminateSession', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        // Open a local connection's stream traffic first, then garbage: smux version 9.
        setTimeout(() => peer.send(PayloadType.Output, Buffer.from([9, 2, 0, 0, 3, 0, 0, 0])), 300);
      },
    });
    const { run, port } = await startForward(['i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    net.connect({ host: '127.0.0.1', port }).on('error', () => {});
    expect(await exitOf(run)).toBe(8);
    expect(run.stderr()).toMatch(/^ssm-bridge: malformed smux data from the agent/m);
    expect(service.calls).toContain('TerminateSession');
  });

  it('forward: a stream opened by the server (SYN) is a protocol error, not a queue of FINs', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        const syns = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeFrame({ cmd: SmuxCommand.Syn, streamId: 2 * i + 2 })));
        for (let offset = 0; offset < syns.length; offset += 1024) peer.send(PayloadType.Output, syns.subarray(offset, offset + 1024));
      },
    });
    const { run } = await startForward(['i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect(await exitOf(run)).toBe(8);
    expect(service.calls).toContain('TerminateSession');
  });

  it('proxy over a port-forwarding document: a failed smux session terminates the session, exit 8', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        setTimeout(() => peer.send(PayloadType.Output, Buffer.from([1, 7, 0, 0, 3, 0, 0, 0])), 200);
      },
    });
    const run = runCli(['proxy', 'i-0123456789abcdef0', '--document-name', 'AWS-StartPortForwardingSession', '--parameters', '{"portNumber":["80"]}', '--endpoint-url', service.endpoint], { stdin: 'pipe' });
    runs.push(run);
    expect(await exitOf(run)).toBe(8);
    expect(service.calls).toContain('TerminateSession');
  });

  it.each([403, 502])('an upgrade answered %i at start: one line and an exit code, no stack trace', async (status) => {
    service = await startHostileService({ refuseUpgrade: () => status, onConnection() {} });
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    const code = await exitOf(run);
    expect(code).toBe(9);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^ssm-bridge: .*HTTP ${status}`));
    expect(run.stderr()).not.toMatch(/\n\s+at /);
  });

  it('a connection closed (1008) before the handshake: exit 9 at once with the code and reason, not a 30 s handshake timeout', async () => {
    service = await startHostileService({ onConnection: (peer) => peer.ws.close(1008, 'token refused') });
    const started = Date.now();
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect(await exitOf(run)).toBe(9);
    expect(Date.now() - started).toBeLessThan(10_000);
    const lines = run.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ssm-bridge: the data channel at 127\.0\.0\.1:\d+ closed before the handshake completed \(WebSocket 1008 token refused\)/);
    expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
  });

  it('proxy whose stdout reader goes away (EPIPE: ssh exited, `| head`): the session is terminated, exit 0, no crash', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake({ portNumber: '22' });
        const flood = setInterval(() => {
          if (peer.ws.readyState !== peer.ws.OPEN) clearInterval(flood);
          else peer.send(PayloadType.Output, Buffer.alloc(1024, 65));
        }, 1);
      },
    });
    const run = runCli(['proxy', 'i-0123456789abcdef0', '--endpoint-url', service.endpoint], { stdin: 'pipe' });
    runs.push(run);
    run.child.stdout!.once('data', () => run.child.stdout!.destroy());
    expect(await exitOf(run)).toBe(0);
    expect(run.stderr()).toBe('');
    expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
  });

  it('forward whose stderr reader goes away (`2>&1 | head -1`): the tunnel stays up, SIGTERM still exits 0', async () => {
    service = await startHostileService({ onConnection: (peer) => peer.handshake(LPF) });
    const { run } = await startForward(['i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint, '--stats-interval', '1s']);
    runs.push(run);
    run.child.stderr!.destroy();
    // Stats lines every second: each write now fails with EPIPE.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(run.child.exitCode).toBeNull();
    run.child.kill('SIGTERM');
    expect(await exitOf(run)).toBe(0);
    expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
  });

  it('an upgrade answered 502 during a resume: no crash; exit 7 once --resume-timeout is spent', async () => {
    service = await startHostileService({
      refuseUpgrade: (index) => (index === 0 ? undefined : 502),
      async onConnection(peer) {
        await peer.handshake(LPF);
        setTimeout(() => peer.ws.terminate(), 300);
      },
    });
    const { run } = await startForward(['i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint, '--resume-timeout', '3s', '--no-reconnect']);
    runs.push(run);
    expect(await exitOf(run)).toBe(7);
    expect(run.stderr()).not.toMatch(/\n\s+at /);
    // Given up: terminated on the service too, not left open until its idle timeout.
    expect(service.calls.at(-1)).toBe('TerminateSession');
  });

  it.each([
    ['forward', ['forward', 'i-0123456789abcdef0', '--remote-port', '80']],
    ['proxy', ['proxy', 'i-0123456789abcdef0', '--document-name', 'AWS-StartPortForwardingSession', '--parameters', '{"portNumber":["80"]}']],
  ])('%s with resume disabled: a drop ends it with exit 7 after TerminateSession', async (_name, args) => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        setTimeout(() => peer.ws.terminate(), 300);
      },
    });
    const run = runCli([...args, '--endpoint-url', service.endpoint, '--resume-timeout', '0'], { stdin: 'pipe' });
    runs.push(run);
    expect(await exitOf(run)).toBe(7);
    expect(service.calls).toEqual(['StartSession', 'TerminateSession']);
  });

  it('63 malformed messages then a good one, over and over: a handful of warnings, then exit 8 (a window, not a run)', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        for (let round = 0; round < 20; round++) {
          for (let i = 0; i < 63; i++) peer.sendRaw(Buffer.alloc(130, 7));
          peer.send(PayloadType.Output, Buffer.alloc(0));
        }
      },
    });
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect(await exitOf(run)).toBe(8);
    const lines = run.stderr().trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines.at(-1)).toMatch(/^ssm-bridge: .*malformed messages within 10 s/);
  });

  it('ConnectToPortError a thousand times: a handful of warnings, the tunnel stays up', async () => {
    service = await startHostileService({
      async onConnection(peer) {
        await peer.handshake(LPF);
        for (let i = 0; i < 1000; i++) peer.send(PayloadType.Flag, encodeFlag(FlagValue.ConnectToPortError));
      },
    });
    const { run } = await startForward(['i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(run.child.exitCode).toBeNull();
    const warnings = run.stderr().split('\n').filter((l) => /the agent could not connect to /.test(l));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2);
  });

  it('forward with a stream-mode document and a client that connected during the start: exit 2, no hang', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    service = await startHostileService({
      async onConnection(peer) {
        await held; // the client connects to the listener while the session is still starting
        await peer.handshake({ portNumber: '22' });
      },
    });
    const port = await freePort();
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '22', '--local-port', String(port), '--endpoint-url', service.endpoint]);
    runs.push(run);
    await connectWhenBound(port);
    release();
    expect(await exitOf(run)).toBe(2);
  });

  it('a local client that resets its connection while the session starts: no crash', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    service = await startHostileService({
      async onConnection(peer) {
        await held;
        await peer.handshake(LPF);
      },
    });
    const port = await freePort();
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--local-port', String(port), '--endpoint-url', service.endpoint]);
    runs.push(run);
    const socket = await connectWhenBound(port);
    socket.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 200));
    release();
    await new Promise((r) => setTimeout(r, 500));
    expect(run.child.exitCode).toBeNull();
    expect(run.stderr()).not.toMatch(/\n\s+at |unexpected error/);
  });

  it('a malformed WebSocket frame while the client closes after a failed handshake: exit 8, no crash', async () => {
    service = await startHostileService({
      onConnection(peer) {
        // A session type ssm-bridge refuses: the client fails the handshake and closes; garbage follows.
        peer.send(PayloadType.HandshakeRequest, encodeHandshakeRequest({ AgentVersion: '3.3.2746.0', RequestedClientActions: [{ ActionType: 'SessionType', ActionParameters: { SessionType: 'InteractiveCommands', Properties: {} } }] }));
        const socket = (peer.ws as unknown as { _socket: net.Socket })._socket;
        const garbage = setInterval(() => {
          if (socket.destroyed) clearInterval(garbage);
          else socket.write(Buffer.from([0xff, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
        }, 2);
        setTimeout(() => clearInterval(garbage), 3_000).unref();
      },
    });
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint]);
    runs.push(run);
    expect(await exitOf(run)).toBe(8);
    expect(run.stderr()).toMatch(/^ssm-bridge: handshake failed: ssm-bridge supports Port sessions only/m);
    expect(run.stderr()).not.toMatch(/\n\s+at |unexpected error/);
  });

  it('control characters the service puts in a close reason or channel_closed reach the terminal escaped', async () => {
    service = await startHostileService({
      async onConnection(peer, index) {
        // The first connection handshakes, then closes with a hostile reason; the resumed one (no new handshake)
        // ends the session with a hostile Output.
        if (index === 0) {
          await peer.handshake(LPF);
          setTimeout(() => peer.ws.close(4000, '\u001b[2Jforged\u0007'), 100);
        } else
          setTimeout(() => {
            const payload = Buffer.from(JSON.stringify({ MessageId: '00000000-0000-4000-8000-000000000000', CreatedDate: new Date().toISOString(), DestinationId: 'i-1', SessionId: 'hostile-1', MessageType: 'channel_closed', SchemaVersion: 1, Output: 'bye\u001b]0;owned\u0007\nssm-bridge: all good' }));
            peer.sendRaw(channelClosed(payload));
          }, 100);
      },
    });
    const run = runCli(['forward', 'i-0123456789abcdef0', '--remote-port', '80', '--endpoint-url', service.endpoint, '--log-level', 'info', '--no-reconnect']);
    runs.push(run);
    expect(await exitOf(run)).toBe(6);
    expect(run.stderr()).not.toMatch(/[\u001b\u0007]/);
    expect(run.stderr()).toMatch(/\\x1b\[2Jforged\\x07/);
    expect(run.stderr()).toMatch(/bye\\x1b\]0;owned\\x07\\x0assm-bridge: all good/);
  });
});

/** A port free right now on 127.0.0.1 (the listener binds it before the session starts). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

/** Connect once the CLI has bound the port (bounded). */
async function connectWhenBound(port: number): Promise<net.Socket> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const socket = await new Promise<net.Socket | undefined>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
    if (socket) {
      socket.on('error', () => {});
      return socket;
    }
    if (Date.now() > deadline) throw new Error(`nothing listened on ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function channelClosed(payload: Buffer): Buffer {
  return encodeAgentMessage({ messageType: MessageType.ChannelClosed, schemaVersion: SCHEMA_VERSION, createdDate: Date.now(), sequenceNumber: 0, flags: MessageFlags.Ack, messageId: '00000000-0000-4000-8000-000000000000', payloadType: PayloadType.Output, payload });
}

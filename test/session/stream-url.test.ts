import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkStreamUrl } from '../../src/session/data-channel.js';
import { runCli } from '../helpers/cli.js';
import { within } from '../helpers/servers.js';

describe('checkStreamUrl: where the session token may go', () => {
  const sandbox = 'http://127.0.0.1:4566';
  it.each([
    ['wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s-1?role=publish_subscribe', undefined],
    ['wss://anywhere.example/x', sandbox],
    ['ws://127.0.0.1:4566/v1/data-channel/s-1?role=publish_subscribe', sandbox],
    ['ws://[::1]:9/v1/data-channel/s', 'http://[::1]:4566'],
    ['ws://localhost:1/x', 'http://localhost:4566'],
  ])('accepts %s (endpoint %s)', (url, endpoint) => {
    expect(() => checkStreamUrl(url, endpoint)).not.toThrow();
  });

  it.each([
    ['ws://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s?token=SECRET', undefined],
    ['ws://10.0.0.1:4566/x?token=SECRET', sandbox],
    ['ws://127.0.0.2:4566/x?token=SECRET', sandbox],
    ['ws://example.com/x?token=SECRET', 'http://example.com'],
    ['ws+unix:///var/run/docker.sock:/x?token=SECRET', sandbox],
    ['http://127.0.0.1:4566/x?token=SECRET', sandbox],
    ['not a url ?token=SECRET', sandbox],
  ])('refuses %s (endpoint %s) with a protocol error that never shows the query', (url, endpoint) => {
    let error: Error | undefined;
    try {
      checkStreamUrl(url, endpoint);
    } catch (err) {
      error = err as Error;
    }
    expect((error as { code?: string } | undefined)?.code).toBe('PROTOCOL_ERROR');
    expect(error!.message).not.toContain('SECRET');
  });
});

describe('a service that hands out a StreamUrl to a local unix socket', () => {
  let api: http.Server;
  let endpoint = '';
  const calls: string[] = [];
  beforeAll(async () => {
    api = http.createServer((req, res) => {
      const target = String(req.headers['x-amz-target'] ?? '');
      calls.push(target);
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (target.endsWith('StartSession')) res.end(JSON.stringify({ SessionId: 's-1', TokenValue: 'TOKEN-SECRET', StreamUrl: 'ws+unix:///tmp/ssm-bridge-none.sock:/x?role=publish_subscribe&sig=SECRET' }));
        else res.end(JSON.stringify({ SessionId: 's-1' }));
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(api.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => api?.close(r));
  });

  it('proxy exits 8 before connecting, terminates the session, and prints neither token nor query', async () => {
    const run = runCli(['proxy', 'i-0123456789abcdef0', '--endpoint-url', endpoint]);
    const code = await within(run.exited, 20_000, 'proxy to exit');
    expect(code).toBe(8);
    expect(run.stderr()).toMatch(/^ssm-bridge: the service returned a StreamUrl \(ws\+unix:\/\/\) /);
    expect(run.stderr()).not.toMatch(/SECRET/);
    expect(calls.some((c) => c.endsWith('TerminateSession'))).toBe(true);
  });
});

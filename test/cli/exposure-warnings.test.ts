import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { isLoopbackHost, warnExposure } from '../../src/cli/commands/common.js';

// A unit test on purpose: the e2e suite binds and dials loopback addresses only.
function capture(): { logger: pino.Logger; lines: () => string[] } {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines: () => out.join('').trim().split('\n').filter(Boolean) };
}

describe('warnings for what a run exposes', () => {
  it('a listener on all interfaces and a cleartext endpoint that is not this machine each get one warning', () => {
    const { logger, lines } = capture();
    warnExposure(logger, { listenAddress: '0.0.0.0', endpointUrl: 'http://ssm.example.internal:4566', what: 'the forward' });
    const msgs = lines().map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatch(/the forward on 0\.0\.0\.0 is reachable from other machines/);
    expect(msgs[1]).toMatch(/http:\/\/ssm\.example\.internal:4566 is not encrypted and not this machine/);
  });

  it('says nothing for loopback listeners, https endpoints and the local sandbox', () => {
    const { logger, lines } = capture();
    for (const listenAddress of ['127.0.0.1', '::1', 'localhost', '127.1.2.3']) warnExposure(logger, { listenAddress });
    for (const endpointUrl of ['https://ssm.eu-west-1.amazonaws.com', 'http://127.0.0.1:4566', 'http://[::1]:4566', 'http://localhost:1']) warnExposure(logger, { endpointUrl });
    expect(lines()).toEqual([]);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
  });
});

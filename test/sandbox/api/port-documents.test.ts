import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_PORT_DOCUMENTS, resolveSessionProperties, SsmApiError } from '../../../src/sandbox/api/index.js';
import { loadSandboxConfig } from '../../../src/sandbox/config.js';

function failure(fn: () => unknown): SsmApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SsmApiError);
    return err as SsmApiError;
  }
  throw new Error('expected resolution to fail');
}

describe('Port documents', () => {
  it('has the three built-in documents of SPEC §1', () => {
    expect(Object.keys(BUILT_IN_PORT_DOCUMENTS).sort()).toEqual(['AWS-StartPortForwardingSession', 'AWS-StartPortForwardingSessionToRemoteHost', 'AWS-StartSSHSession']);
    expect(BUILT_IN_PORT_DOCUMENTS['AWS-StartSSHSession']!.properties).not.toHaveProperty('type');
  });

  it('accepts every port 1–65535 as portNumber and passes it through', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (port, local) => {
        expect(resolveSessionProperties('AWS-StartPortForwardingSession', { portNumber: [String(port)], localPortNumber: [String(local)] })).toEqual({
          portNumber: String(port),
          type: 'LocalPortForwarding',
          localPortNumber: String(local),
        });
      }),
    );
  });

  it('rejects any portNumber that is not a canonical port with InvalidParameters', () => {
    const notAPort = fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/^([1-9]\d{0,4})$/.test(s) || Number(s) > 65535);
    fc.assert(
      fc.property(notAPort, (value) => {
        const err = failure(() => resolveSessionProperties('AWS-StartSSHSession', { portNumber: [value] }));
        expect(err.type).toBe('InvalidParameters');
        expect(err.status).toBe(400);
      }),
    );
  });

  it('accepts remote host names and addresses the service accepts', () => {
    for (const host of ['db.internal', '10.0.0.12', '::1', 'my-rds.abc123.eu-west-1.rds.amazonaws.com', 'fd00::12']) {
      expect(resolveSessionProperties('AWS-StartPortForwardingSessionToRemoteHost', { host: [host] }).host).toBe(host);
    }
    for (const host of ['ab', 'a,b', 'a b;c', '$(id)', 'x`y`', '[::1]', 'a|b', 'a#b', 'a=b']) {
      expect(failure(() => resolveSessionProperties('AWS-StartPortForwardingSessionToRemoteHost', { host: [host] })).type, host).toBe('InvalidParameters');
    }
  });

  it('lets a custom document shadow nothing built in but resolves its own templates', () => {
    const { documents } = loadSandboxConfig({
      targets: {},
      documents: { 'Db-Tunnel': { parameters: { db: { default: 'primary' } }, properties: { portNumber: '5432', host: '{{db}}.db.internal', type: 'LocalPortForwarding' } } },
    });
    expect(resolveSessionProperties('Db-Tunnel', undefined, documents)).toEqual({ portNumber: '5432', host: 'primary.db.internal', type: 'LocalPortForwarding' });
    expect(resolveSessionProperties('Db-Tunnel', { db: ['replica'] }, documents).host).toBe('replica.db.internal');
    expect(failure(() => resolveSessionProperties('Db-Tunnel', undefined, {})).type).toBe('InvalidDocument');
    expect(resolveSessionProperties('arn:aws:ssm:us-east-1::document/AWS-StartSSHSession', {})).toEqual({ portNumber: '22' });
  });

  it('does not treat inherited object keys as documents or parameters', () => {
    expect(failure(() => resolveSessionProperties('constructor', {})).type).toBe('InvalidDocument');
    expect(failure(() => resolveSessionProperties('AWS-StartSSHSession', { toString: ['1'] })).type).toBe('InvalidParameters');
  });
});

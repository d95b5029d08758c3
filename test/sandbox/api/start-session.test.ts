import { InvalidDocument, InvalidParameters, StartSessionCommand, TargetNotConnected, ValidationException, type SSMClient, type StartSessionCommandInput } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REMOTE_HOST_PATTERN } from '../../../src/sandbox/api/index.js';
import { rejectionOf, startSandboxApiServer, type SandboxApiServer } from '../../helpers/sandbox-api-server.js';

const TARGET = 'i-0123456789abcdef0';
const OFFLINE = 'mi-0offline000000001';
const ECS = 'ecs:cluster_0123456789abcdef0123456789abcdef_0123456789abcdef0123456789abcdef-1234567890';

let api: SandboxApiServer;
let ssm: SSMClient;

beforeEach(async () => {
  api = await startSandboxApiServer({
    targets: { [TARGET]: { ports: { '80': '127.0.0.1:1' } }, [OFFLINE]: { connected: false }, [ECS]: {} },
    documents: {
      'Custom-PortDoc': {
        parameters: { portNumber: { type: 'String', default: '443', allowedPattern: '^(443|8443)$' }, remote: { default: 'db.internal' } },
        properties: { portNumber: '{{ portNumber }}', type: 'LocalPortForwarding', host: '{{remote}}' },
      },
      'Fixed-Ssh': { properties: { portNumber: '2222' } },
    },
  });
  ssm = api.ssm();
});

afterEach(async () => {
  await api?.close();
});

function start(input: Partial<StartSessionCommandInput>) {
  return ssm.send(new StartSessionCommand({ Target: TARGET, ...input }));
}

describe('StartSession', () => {
  it('starts a session for each built-in document and resolves its properties', async () => {
    const cases: Array<[string, Record<string, string[]> | undefined, object]> = [
      ['AWS-StartSSHSession', undefined, { portNumber: '22' }],
      ['AWS-StartSSHSession', { portNumber: ['2022'] }, { portNumber: '2022' }],
      ['AWS-StartPortForwardingSession', undefined, { portNumber: '80', type: 'LocalPortForwarding', localPortNumber: '0' }],
      ['AWS-StartPortForwardingSession', { portNumber: ['5432'], localPortNumber: ['15432'] }, { portNumber: '5432', type: 'LocalPortForwarding', localPortNumber: '15432' }],
      [
        'AWS-StartPortForwardingSessionToRemoteHost',
        { host: ['db.internal'], portNumber: ['5432'] },
        { host: 'db.internal', portNumber: '5432', type: 'LocalPortForwarding', localPortNumber: '0' },
      ],
    ];
    const ids = new Set<string>();
    for (const [documentName, parameters, properties] of cases) {
      const out = await start({ DocumentName: documentName, ...(parameters ? { Parameters: parameters } : {}) });
      expect(out.SessionId).toMatch(/^sandbox-[0-9a-f]{17}$/);
      expect(out.TokenValue).toMatch(/^[A-Za-z0-9_-]{64}$/);
      expect(out.StreamUrl).toBe(`ws://127.0.0.1:${api.port}/v1/data-channel/${out.SessionId}?role=publish_subscribe`);
      const record = api.registry.get(out.SessionId!)!;
      expect(record).toMatchObject({ targetId: TARGET, documentName, state: 'pending', token: out.TokenValue });
      expect(record.properties).toEqual(properties);
      expect(record.parameters).toEqual(parameters ?? {});
      expect(record.counters.resumeSessionCalls).toBe(0);
      ids.add(out.SessionId!);
    }
    expect(ids.size).toBe(cases.length);
  });

  it('resolves custom documents from the config, by name or ARN, with defaults and literal properties', async () => {
    const a = await start({ DocumentName: 'Custom-PortDoc' });
    expect(api.registry.get(a.SessionId!)?.properties).toEqual({ portNumber: '443', type: 'LocalPortForwarding', host: 'db.internal' });
    const b = await start({ DocumentName: 'arn:aws:ssm:us-east-1:123456789012:document/Custom-PortDoc', Parameters: { portNumber: ['8443'], remote: ['cache.internal'] } });
    expect(api.registry.get(b.SessionId!)?.properties).toEqual({ portNumber: '8443', type: 'LocalPortForwarding', host: 'cache.internal' });
    const c = await start({ DocumentName: 'Fixed-Ssh' });
    expect(api.registry.get(c.SessionId!)?.properties).toEqual({ portNumber: '2222' });
    const bad = await rejectionOf(start({ DocumentName: 'Custom-PortDoc', Parameters: { portNumber: ['22'] } }));
    expect(bad).toBeInstanceOf(InvalidParameters);
    expect(bad.message).toBe('Parameter "portNumber" has value "22" not matching "^(443|8443)$".');
  });

  it('accepts any 1–400 character target id the config names (ecs:…)', async () => {
    const out = await start({ Target: ECS, DocumentName: 'AWS-StartSSHSession' });
    expect(api.registry.get(out.SessionId!)?.targetId).toBe(ECS);
  });

  it('answers TargetNotConnected, typed by the SDK, for unknown and offline targets', async () => {
    for (const target of ['i-0doesnotexist00000', OFFLINE]) {
      const err = await rejectionOf(start({ Target: target, DocumentName: 'AWS-StartSSHSession' }));
      expect(err).toBeInstanceOf(TargetNotConnected);
      expect(err.name).toBe('TargetNotConnected');
      expect(err.message).toBe(`${target} is not connected.`);
      expect(err.$metadata?.httpStatusCode).toBe(400);
      expect(err.$metadata?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(api.registry.list()).toHaveLength(0);
  });

  it('answers ValidationException for names, lengths and patterns, all problems in one message', async () => {
    const cases: Array<[Partial<StartSessionCommandInput>, RegExp]> = [
      [{ DocumentName: 'xy' }, /at 'documentName' failed to satisfy constraint: Member must satisfy regular expression pattern/],
      [{ DocumentName: 'bad name!' }, /documentName/],
      [{ DocumentName: 'x'.repeat(129) }, /documentName/],
      [{ Target: 'i'.repeat(401), DocumentName: 'AWS-StartSSHSession' }, /at 'target' failed to satisfy constraint: Member must have length less than or equal to 400/],
      [{ Target: '', DocumentName: 'AWS-StartSSHSession' }, /at 'target' failed to satisfy constraint: Member must have length greater than or equal to 1/],
      [{ DocumentName: 'AWS-StartSSHSession', Reason: 'r'.repeat(257) }, /reason/],
      [{ DocumentName: 'AWS-StartSSHSession', Reason: 'two\nlines' }, /at 'reason' failed to satisfy constraint: Member must satisfy regular expression pattern/],
      [{ DocumentName: 'AWS-StartSSHSession', Parameters: { ['k'.repeat(256)]: ['22'] } }, /Map keys must satisfy constraint/],
      [{ DocumentName: 'AWS-StartSSHSession', Parameters: { portNumber: [''] } }, /Map value must satisfy constraint/],
      [{ DocumentName: 'AWS-StartSSHSession', Parameters: { portNumber: ['9'.repeat(65536)] } }, /length less than or equal to 65535/],
    ];
    for (const [input, message] of cases) {
      const err = await rejectionOf(start(input));
      expect(err, JSON.stringify(input).slice(0, 80)).toBeInstanceOf(ValidationException);
      expect(err.message).toMatch(/^1 validation error detected: /);
      expect(err.message).toMatch(message);
      expect(err.$metadata?.httpStatusCode).toBe(400);
    }
    const two = await rejectionOf(start({ Target: 'i'.repeat(401), DocumentName: 'x' }));
    expect(two.message).toMatch(/^2 validation errors detected: .*target.*; .*documentName/);
  });

  it('answers InvalidDocument for no document (a shell), shell documents and unknown documents', async () => {
    const shell = await rejectionOf(start({}));
    expect(shell).toBeInstanceOf(InvalidDocument);
    expect(shell.message).toMatch(/Port sessions only.*interactive shell/);
    const runShell = await rejectionOf(start({ DocumentName: 'SSM-SessionManagerRunShell' }));
    expect(runShell).toBeInstanceOf(InvalidDocument);
    expect(runShell.message).toMatch(/Port sessions only/);
    const unknown = await rejectionOf(start({ DocumentName: 'No-Such-Doc' }));
    expect(unknown).toBeInstanceOf(InvalidDocument);
    expect(unknown.message).toMatch(/^Document No-Such-Doc does not exist\. .*AWS-StartPortForwardingSession.*Custom-PortDoc/);
    // A document check comes before the target check.
    expect(await rejectionOf(start({ Target: 'i-0doesnotexist00000', DocumentName: 'No-Such-Doc' }))).toBeInstanceOf(InvalidDocument);
  });

  it('answers InvalidParameters for unknown, repeated, non-matching and missing parameters', async () => {
    const cases: Array<[Partial<StartSessionCommandInput>, string | RegExp]> = [
      [{ DocumentName: 'AWS-StartPortForwardingSession', Parameters: { nope: ['1'] } }, /^Parameter "nope" is not defined in document AWS-StartPortForwardingSession; it accepts portNumber, localPortNumber\.$/],
      [{ DocumentName: 'AWS-StartSSHSession', Parameters: { portNumber: ['22', '23'] } }, /takes exactly one value, got 2/],
      [{ DocumentName: 'AWS-StartSSHSession', Parameters: { portNumber: [] } }, /takes exactly one value, got 0/],
      [{ DocumentName: 'AWS-StartPortForwardingSession', Parameters: { portNumber: ['99999'] } }, /^Parameter "portNumber" has value "99999" not matching "\^\(\[1-9\]/],
      [{ DocumentName: 'AWS-StartPortForwardingSession', Parameters: { portNumber: ['0'] } }, /"portNumber" has value "0"/],
      [{ DocumentName: 'AWS-StartPortForwardingSession', Parameters: { localPortNumber: ['65536'] } }, /"localPortNumber" has value "65536"/],
      [{ DocumentName: 'AWS-StartPortForwardingSessionToRemoteHost', Parameters: { portNumber: ['80'] } }, 'Parameter "host" is required by document AWS-StartPortForwardingSessionToRemoteHost but was not provided.'],
      [{ DocumentName: 'AWS-StartPortForwardingSessionToRemoteHost', Parameters: { host: ['db;rm -rf'] } }, `Parameter "host" has value "db;rm -rf" not matching "${REMOTE_HOST_PATTERN}".`],
      [{ DocumentName: 'AWS-StartPortForwardingSessionToRemoteHost', Parameters: { host: ['[::1]'] } }, /"host" has value "\[::1\]"/],
    ];
    for (const [input, message] of cases) {
      const err = await rejectionOf(start(input));
      expect(err, JSON.stringify(input)).toBeInstanceOf(InvalidParameters);
      expect(err.$metadata?.httpStatusCode).toBe(400);
      if (typeof message === 'string') expect(err.message).toBe(message);
      else expect(err.message).toMatch(message);
    }
    expect(api.registry.list()).toHaveLength(0);
  });
});

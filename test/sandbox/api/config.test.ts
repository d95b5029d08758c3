import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeError, ErrorCode } from '../../../src/errors.js';
import { DEFAULT_AGENT_VERSION, DEFAULT_IDLE_SESSION_TIMEOUT_MS, DEFAULT_SESSION_EXPIRY_MS, loadSandboxConfig, parseHostPort } from '../../../src/sandbox/config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function configError(input: unknown): BridgeError {
  try {
    loadSandboxConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(BridgeError);
    expect((err as BridgeError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    return err as BridgeError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('sandbox config', () => {
  it('fills in the defaults', () => {
    expect(loadSandboxConfig({ targets: { 'i-1': {} } })).toEqual({
      region: 'us-east-1',
      targets: { 'i-1': { agentVersion: DEFAULT_AGENT_VERSION, ports: {}, remoteHosts: {}, connected: true } },
      documents: {},
      sessionExpiryMs: DEFAULT_SESSION_EXPIRY_MS,
      idleSessionTimeoutMs: DEFAULT_IDLE_SESSION_TIMEOUT_MS,
      paced: true,
      credentials: [],
    });
    expect(DEFAULT_AGENT_VERSION).toBe('3.3.2746.0');
    expect(DEFAULT_SESSION_EXPIRY_MS).toBe(20 * 60_000);
    expect(DEFAULT_IDLE_SESSION_TIMEOUT_MS).toBe(20 * 60_000);
  });

  it('keeps a full config, and parsing is idempotent', () => {
    const input = {
      region: 'eu-west-1',
      targets: {
        'mi-0123456789abcdef0': { agentVersion: '3.0.161.0', ports: { '22': '127.0.0.1:2222', '443': '[::1]:8443' }, remoteHosts: { 'DB.internal': { '5432': 'localhost:15432' } }, connected: false },
        'ecs:cluster_task_container': {},
      },
      documents: {
        'My-PortDoc': {
          sessionType: 'Port',
          schemaVersion: '1.0',
          description: 'pasted from a real document',
          parameters: { portNumber: { type: 'String', default: '443', allowedPattern: '^(443|8443)$', description: 'port' } },
          properties: { portNumber: '{{ portNumber }}', type: 'LocalPortForwarding' },
        },
      },
      sessionExpiryMs: 1000,
      credentials: [{ accessKeyId: 'AKIDEXTRA0000001', secretAccessKey: 'extra/secret+1' }, { accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'sandbox' }],
    };
    const config = loadSandboxConfig(input);
    expect(config.credentials).toEqual(input.credentials);
    expect(config.targets['mi-0123456789abcdef0']).toEqual({ agentVersion: '3.0.161.0', ports: input.targets['mi-0123456789abcdef0'].ports, remoteHosts: { 'db.internal': { '5432': 'localhost:15432' } }, connected: false });
    expect(config.documents['My-PortDoc']).toEqual({
      parameters: { portNumber: { type: 'String', default: '443', allowedPattern: '^(443|8443)$', description: 'port' } },
      properties: { portNumber: '{{ portNumber }}', type: 'LocalPortForwarding' },
    });
    expect(loadSandboxConfig(config)).toEqual(config);
  });

  it('reads a JSON file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-config-'));
    dirs.push(dir);
    const path = join(dir, 'targets.json');
    writeFileSync(path, JSON.stringify({ targets: { 'i-1': { ports: { '80': '127.0.0.1:8080' } } } }));
    expect(loadSandboxConfig(path).targets['i-1']?.ports).toEqual({ '80': '127.0.0.1:8080' });
    writeFileSync(path, '{"targets": ');
    expect(configError(path).message).toMatch(/targets\.json is not valid JSON/);
    expect(configError(join(dir, 'missing.json')).message).toMatch(/cannot read .*missing\.json/);
  });

  it('rejects bad input with a message naming the key', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /\(top level\) must be an object/],
      [{}, /targets is required/],
      [{ targets: [] }, /targets must be an object/],
      [{ targets: {}, extra: 1 }, /\(top level\)\.extra is not a known key/],
      [{ targets: { ['i'.repeat(401)]: {} } }, /must have 1 to 400 characters/],
      [{ targets: { 'i-1': { ports: { '22': 'nope' } } } }, /targets\.i-1\.ports\.22 must be "host:port"/],
      [{ targets: { 'i-1': { ports: { '22': '127.0.0.1:70000' } } } }, /targets\.i-1\.ports\.22/],
      [{ targets: { 'i-1': { ports: { '70000': '127.0.0.1:22' } } } }, /targets\.i-1\.ports\.70000 must be keyed by a port number/],
      [{ targets: { 'i-1': { port: {} } } }, /targets\.i-1\.port is not a known key/],
      [{ targets: { 'i-1': { agentVersion: 'latest' } } }, /targets\.i-1\.agentVersion must be a version/],
      [{ targets: { 'i-1': { connected: 'yes' } } }, /targets\.i-1\.connected must be true or false/],
      [{ targets: { 'i-1': { remoteHosts: { 'db.internal': { '5432': 5432 } } } } }, /targets\.i-1\.remoteHosts\.db\.internal\.5432 must be "host:port"/],
      [{ targets: {}, region: 'Mars' }, /region must be a region name/],
      [{ targets: {}, sessionExpiryMs: 0 }, /sessionExpiryMs must be a whole number/],
      [{ targets: {}, sessionExpiryMs: 2 ** 31 }, /sessionExpiryMs/],
      [{ targets: {}, idleSessionTimeoutMs: 0 }, /idleSessionTimeoutMs must be a whole number of milliseconds from 1 to 2147483647/],
      [{ targets: {}, idleSessionTimeoutMs: '20m' }, /idleSessionTimeoutMs/],
      [{ targets: {}, idleSessionTimeoutMs: 2 ** 31 }, /idleSessionTimeoutMs/],
      [{ targets: {}, documents: { 'AWS-Mine': { properties: { portNumber: '1' } } } }, /documents\.AWS-Mine uses a prefix reserved/],
      [{ targets: {}, documents: { 'amazonDoc': { properties: { portNumber: '1' } } } }, /reserved/],
      [{ targets: {}, documents: { 'x': { properties: { portNumber: '1' } } } }, /documents\.x is not a valid document name/],
      [{ targets: {}, documents: { 'My-Doc': { parameters: {} } } }, /documents\.My-Doc\.properties must be an object/],
      [{ targets: {}, documents: { 'My-Doc': { properties: { type: 'LocalPortForwarding' } } } }, /documents\.My-Doc\.properties\.portNumber is required/],
      [{ targets: {}, documents: { 'My-Doc': { properties: { portNumber: '{{ port }}' } } } }, /properties\.portNumber refers to \{\{ port \}\}/],
      [{ targets: {}, documents: { 'My-Doc': { properties: { portNumber: '1', type: 'Shell' } } } }, /properties\.type must be "LocalPortForwarding"/],
      [{ targets: {}, documents: { 'My-Doc': { properties: { portNumber: '1', command: 'ls' } } } }, /properties\.command is not a Port session property/],
      [{ targets: {}, documents: { 'My-Doc': { sessionType: 'Standard_Stream', properties: { portNumber: '1' } } } }, /sessionType must be "Port"/],
      [{ targets: {}, documents: { 'My-Doc': { parameters: { p: { type: 'StringList' } }, properties: { portNumber: '1' } } } }, /parameters\.p\.type must be "String"/],
      [{ targets: {}, documents: { 'My-Doc': { parameters: { p: { allowedPattern: '(' } }, properties: { portNumber: '1' } } } }, /parameters\.p\.allowedPattern is not a valid regular expression/],
      [{ targets: {}, documents: { 'My-Doc': { parameters: { p: { default: '9', allowedPattern: '^1$' } }, properties: { portNumber: '{{p}}' } } } }, /parameters\.p\.default "9" does not match/],
      [{ targets: {}, documents: { 'My-Doc': { parameters: { 'bad name': {} }, properties: { portNumber: '1' } } } }, /not a valid parameter name/],
      [{ targets: {}, credentials: { accessKeyId: 'AKID1', secretAccessKey: 's' } }, /^sandbox config: credentials must be a list of \{"accessKeyId", "secretAccessKey"\}, got object$/],
      [{ targets: {}, credentials: ['AKID1:s3cr3t'] }, /^sandbox config: credentials\[0\] must be an object .*, got string$/],
      [{ targets: {}, credentials: [{ accessKeyId: 'AKID1' }] }, /credentials\[0\]\.secretAccessKey must be a string of 1 to 128 characters/],
      [{ targets: {}, credentials: [{ accessKeyId: 'AKID 1', secretAccessKey: 's' }] }, /credentials\[0\]\.accessKeyId must be 1 to 128 letters/],
      [{ targets: {}, credentials: [{ accessKeyId: 'AKID1', secretAccessKey: 's', sessionToken: 't' }] }, /credentials\[0\]\.sessionToken is not a known key/],
      [{ targets: {}, credentials: [{ accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'other' }] }, /credentials\[0\]\.accessKeyId AKIDSANDBOX is the sandbox's own key/],
      [{ targets: {}, credentials: [{ accessKeyId: 'AKID1', secretAccessKey: 'a' }, { accessKeyId: 'AKID1', secretAccessKey: 'b' }] }, /credentials\[1\]\.accessKeyId AKID1 is listed twice/],
    ];
    for (const [input, message] of cases) expect(configError(input).message, JSON.stringify(input)).toMatch(message);
    // A secret is never echoed back in a message.
    expect(configError({ targets: {}, credentials: [{ accessKeyId: 'AKID1', secretAccessKey: 'has space' }] }).message).not.toMatch(/has space/);
  });

  it('parses host:port destinations', () => {
    expect(parseHostPort('127.0.0.1:5432')).toEqual({ host: '127.0.0.1', port: 5432 });
    expect(parseHostPort('[::1]:22')).toEqual({ host: '::1', port: 22 });
    expect(parseHostPort('db.internal:1')).toEqual({ host: 'db.internal', port: 1 });
    for (const bad of ['127.0.0.1', ':22', '::1:22', 'host:0', 'host:65536', 'a b:1']) expect(parseHostPort(bad), bad).toBeUndefined();
  });
});

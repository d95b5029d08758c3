import { describe, expect, it } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { envName, parseTunnelsFile } from '../../src/cli/tunnels-file.js';

/** The message of the error parsing `text` throws; fails the test if it parses. */
function errorOf(text: string, file = 'tunnels.yaml'): string {
  try {
    parseTunnelsFile(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(BridgeError);
    expect((err as BridgeError).code).toBe('INVALID_ARGUMENT');
    return (err as Error).message;
  }
  throw new Error('expected a parse error');
}

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

describe('parseTunnelsFile: a valid file', () => {
  it('reads defaults, every field, and where each tunnel starts', () => {
    const file = parseTunnelsFile(
      lines(
        '# tunnels for the integration job', //             1
        'region: eu-west-1', //                              2
        'endpointUrl: http://127.0.0.1:4566', //             3
        'tunnels:', //                                       4
        '  - name: db', //                                   5
        '    target: i-0123456789abcdef0', //                6
        '    remoteHost: db.internal', //                    7
        '    remotePort: 5432', //                           8
        '    localPort: 15432', //                           9
        '  - name: cache', //                               10
        '    target: i-0fedcba9876543210', //               11
        '    remotePort: "6379"', //                        12
        '    localSocket: /tmp/cache.sock', //              13
        '    profile: ops', //                              14
        '  - name: custom', //                              15
        '    target: mi-0123456789abcdef0', //              16
        '    documentName: My-PortDoc', //                  17
        '    parameters: {portNumber: [443], extra: x}', // 18
        '    region: us-west-2', //                         19
        '    reason: nightly migration', //                 20
      ),
      'tunnels.yaml',
    );
    expect(file.defaults).toEqual({ region: 'eu-west-1', endpointUrl: 'http://127.0.0.1:4566' });
    expect(file.tunnels).toEqual([
      { name: 'db', target: 'i-0123456789abcdef0', remoteHost: 'db.internal', remotePort: 5432, local: { kind: 'tcp', address: '127.0.0.1', port: 15432 }, line: 5 },
      { name: 'cache', target: 'i-0fedcba9876543210', remotePort: 6379, local: { kind: 'unix', path: '/tmp/cache.sock' }, profile: 'ops', line: 10 },
      {
        name: 'custom',
        target: 'mi-0123456789abcdef0',
        documentName: 'My-PortDoc',
        parameters: { portNumber: ['443'], extra: ['x'] },
        local: { kind: 'tcp', address: '127.0.0.1', port: 0 },
        region: 'us-west-2',
        reason: 'nightly migration',
        line: 15,
      },
    ]);
  });

  it('accepts JSON (YAML is a superset)', () => {
    const json = JSON.stringify({ profile: 'ci', tunnels: [{ name: 'a', target: 'i-1', remotePort: 22, localAddress: '::1' }] }, null, 2);
    const file = parseTunnelsFile(json, 'tunnels.json');
    expect(file.defaults).toEqual({ profile: 'ci' });
    expect(file.tunnels[0]).toMatchObject({ name: 'a', target: 'i-1', remotePort: 22, local: { kind: 'tcp', address: '::1', port: 0 }, line: 4 });
  });

  it('turns names into environment variable names', () => {
    expect(envName('read-db')).toBe('READ_DB');
    expect(envName('Cache_2')).toBe('CACHE_2');
  });
});

describe('parseTunnelsFile: errors name the file and the line', () => {
  it('a bad port, at the line of its value', () => {
    const text = lines('tunnels:', '  - name: web', '    target: i-0123456789abcdef0', '    remotePort: 80', '  - name: db', '    target: i-0123456789abcdef0', '    remotePort: postgres');
    expect(errorOf(text)).toBe('tunnels.yaml:7: remotePort must be a port number from 1 to 65535 (got "postgres")');
  });

  it('out-of-range ports, local and remote', () => {
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: 70000'))).toMatch(/^tunnels\.yaml:4: remotePort must be a port number/);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: 1', '    localPort: -1'))).toMatch(/^tunnels\.yaml:5: localPort must be a port number from 0/);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: 0'))).toMatch(/^tunnels\.yaml:4: remotePort must be a port number from 1/);
  });

  it('an unknown key (a typo), at its line', () => {
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remote_port: 5432'))).toMatch(/^tunnels\.yaml:4: unknown key "remote_port" in a tunnel \(expected one of name, target, remoteHost, remotePort/);
    expect(errorOf(lines('regoin: eu-west-1', 'tunnels:', '  - {name: a, target: i-1, remotePort: 1}'))).toMatch(/^tunnels\.yaml:1: unknown key "regoin"/);
  });

  it('a missing field, at the line where the tunnel starts', () => {
    const text = lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: 1', '', '  - name: b', '    remotePort: 2');
    expect(errorOf(text)).toBe('tunnels.yaml:6: tunnel "b" needs a "target" (an instance id such as i-0123456789abcdef0)');
    expect(errorOf(lines('tunnels:', '  - target: i-1', '    remotePort: 1'))).toMatch(/^tunnels\.yaml:2: a tunnel needs a "name"/);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1'))).toMatch(/^tunnels\.yaml:2: tunnel "a" needs "remotePort"/);
  });

  it('names: their form, and unique also as environment variable names', () => {
    expect(errorOf(lines('tunnels:', '  - name: 1db', '    target: i-1', '    remotePort: 1'))).toMatch(/^tunnels\.yaml:2: name must start with a letter/);
    const twice = lines('tunnels:', '  - {name: db, target: i-1, remotePort: 1}', '  - {name: db, target: i-2, remotePort: 1}');
    expect(errorOf(twice)).toBe('tunnels.yaml:3: tunnel name "db" is used twice; names must be unique');
    const clash = lines('tunnels:', '  - {name: read-db, target: i-1, remotePort: 1}', '  - {name: read_db, target: i-2, remotePort: 1}');
    expect(errorOf(clash)).toMatch(/^tunnels\.yaml:3: tunnel names "read-db" and "read_db" give the same environment variable names/);
  });

  it('two tunnels on one fixed local port or socket', () => {
    const ports = lines('tunnels:', '  - {name: a, target: i-1, remotePort: 1, localPort: 5432}', '  - {name: b, target: i-2, remotePort: 1, localPort: 5432}');
    expect(errorOf(ports)).toMatch(/^tunnels\.yaml:3: tunnel "b" listens on the same local port as tunnel "a"/);
    // Port 0 picks a free port each time: no clash.
    expect(parseTunnelsFile(lines('tunnels:', '  - {name: a, target: i-1, remotePort: 1}', '  - {name: b, target: i-2, remotePort: 1}'), 'f').tunnels).toHaveLength(2);
  });

  it('contradictory fields', () => {
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: 1', '    localSocket: /tmp/a.sock', '    localPort: 5'))).toMatch(/^tunnels\.yaml:6: localPort cannot be combined with localSocket/);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    documentName: D', '    remotePort: 1'))).toMatch(/^tunnels\.yaml:5: remotePort is not used with documentName/);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: 1', '    parameters: {x: y}'))).toMatch(/^tunnels\.yaml:5: "parameters" needs "documentName"/);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    documentName: D', '    parameters:', '      portNumber: {a: b}'))).toMatch(/^tunnels\.yaml:6: parameters\.portNumber must be a string or a list of strings/);
  });

  it('wrong types', () => {
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: 12', '    remotePort: 1'))).toBe('tunnels.yaml:3: target must be a non-empty string (got 12)');
    expect(errorOf(lines('tunnels:', '  - name: a', '    target:', '    remotePort: 1'))).toMatch(/^tunnels\.yaml:3: target must be a non-empty string \(got /);
    expect(errorOf(lines('tunnels:', '  - just-a-string'))).toMatch(/^tunnels\.yaml:2: each tunnel must be a mapping/);
    expect(errorOf(lines('region: eu-west-1', 'tunnels: {}'))).toMatch(/^tunnels\.yaml:2: "tunnels" must be a non-empty list/);
    expect(errorOf(lines('region: eu-west-1', 'tunnels:'))).toMatch(/^tunnels\.yaml:2: "tunnels" must be a non-empty list/);
    expect(errorOf(lines('region: eu-west-1'))).toMatch(/^tunnels\.yaml:1: missing "tunnels"/);
    expect(errorOf(lines('- name: a'))).toMatch(/^tunnels\.yaml:1: expected a mapping with a "tunnels" list/);
    expect(errorOf('')).toMatch(/^tunnels\.yaml:1: expected a mapping/);
  });

  it('YAML and JSON syntax errors and duplicate keys, at their line', () => {
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: [1', '  - name: b'))).toMatch(/^tunnels\.yaml:5: not valid YAML or JSON: /);
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    target: i-2', '    remotePort: 1'))).toMatch(/^tunnels\.yaml:4: not valid YAML or JSON: Map keys must be unique/);
    expect(errorOf('{\n  "tunnels": [\n    {"name": "a", "target": "i-1", "remotePort": 1},\n  ]\n  "region": "x"\n}\n', 'tunnels.json')).toMatch(/^tunnels\.json:5: not valid YAML or JSON/);
    expect(errorOf(lines('tunnels:', '  - name: a', '\ttarget: i-1'))).toMatch(/^tunnels\.yaml:3: not valid YAML or JSON/);
  });
});

describe('parseTunnelsFile: what an error says it got', () => {
  it('lists and empty values', () => {
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort: [1]'))).toBe('tunnels.yaml:4: remotePort must be a port number from 1 to 65535 (got a list or mapping)');
    expect(errorOf(lines('tunnels:', '  - name: a', '    target: i-1', '    remotePort:'))).toBe('tunnels.yaml:4: remotePort must be a port number from 1 to 65535 (got null)');
  });
});

describe('parseTunnelsFile: reconnect and sessions', () => {
  it('reads reconnect: false and sessions: 4 on a tunnel; leaves them out otherwise', () => {
    const file = parseTunnelsFile(
      lines('tunnels:', '  - {name: db, target: i-0123456789abcdef0, remotePort: 5432, reconnect: false, sessions: 4}', '  - {name: web, target: i-0123456789abcdef0, remotePort: 80}'),
      'tunnels.yaml',
    );
    expect(file.tunnels[0]).toMatchObject({ reconnect: false, sessions: 4 });
    expect(file.tunnels[1]!.reconnect).toBeUndefined();
    expect(file.tunnels[1]!.sessions).toBeUndefined();
  });

  it('a reconnect that is not a boolean, and sessions out of range, at their lines', () => {
    expect(errorOf(lines('tunnels:', '  - name: db', '    target: i-0123456789abcdef0', '    remotePort: 5432', '    reconnect: "no"'))).toBe('tunnels.yaml:5: reconnect must be true or false (got "no")');
    expect(errorOf(lines('tunnels:', '  - name: db', '    target: i-0123456789abcdef0', '    remotePort: 5432', '    sessions: 17'))).toBe('tunnels.yaml:5: sessions must be a whole number from 1 to 16 (got 17)');
    expect(errorOf(lines('tunnels:', '  - name: db', '    target: i-0123456789abcdef0', '    remotePort: 5432', '    sessions: 0'))).toBe('tunnels.yaml:5: sessions must be a whole number from 1 to 16 (got 0)');
  });
});

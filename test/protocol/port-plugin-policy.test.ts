import { describe, expect, it } from 'vitest';
import { agentMultiplexes, agentRunsSmuxKeepAlive, compareVersions, smuxKeepAliveFor } from '../../src/protocol/index.js';

describe('port plugin policy (client side, SPEC §7)', () => {
  it('compares versions numerically', () => {
    expect(compareVersions('3.1.1511.0', '3.1.1575.0')).toBe(-1);
    expect(compareVersions('3.10.0', '3.9.9')).toBe(1);
    expect(compareVersions('1.2', '1.2.0.0')).toBe(0);
  });

  it('multiplexing needs an agent after 3.0.196.0 and a client of 1.1.70 or later', () => {
    expect(agentMultiplexes('3.0.196.0')).toBe(false);
    expect(agentMultiplexes('3.0.222.0')).toBe(true);
    expect(agentMultiplexes('3.3.2746.0', '1.1.61.0')).toBe(false);
  });

  it('keep-alive by agent release and the version we report', () => {
    const current = '1.2.694.0';
    const cases: Array<[string, string, boolean]> = [
      ['3.0.222.0', current, true],
      ['3.1.1374.0', current, true],
      ['3.1.1446.0', current, false],
      ['3.1.1446.0', '1.2.331.0', false],
      ['3.1.1476.0', current, true],
      ['3.1.1511.0', current, true],
      ['3.1.1575.0', current, false],
      ['3.1.1575.0', '1.2.331.0', true],
      ['3.3.2746.0', current, false],
    ];
    for (const [agent, client, on] of cases) expect([agent, client, agentRunsSmuxKeepAlive(agent, client)]).toEqual([agent, client, on]);
    expect(smuxKeepAliveFor('3.1.1511.0')).toEqual({ intervalMs: 10_000, timeoutMs: 30_000 });
    expect(smuxKeepAliveFor('3.3.2746.0')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { printable } from '../../src/cli/printable.js';

describe('printable: text from the service reaches the terminal inert', () => {
  it('escapes escape sequences, BEL, line breaks and C1 controls; leaves the rest', () => {
    expect(printable('closed: \u001b[2J\u0007gone\nssm-bridge: forged line\r\u009b')).toBe('closed: \\x1b[2J\\x07gone\\x0assm-bridge: forged line\\x0d\\x9b');
    expect(printable('plain text, ünïcödé, tabs\tok?')).toBe('plain text, ünïcödé, tabs\\x09ok?');
  });
});

import { closest } from './suggest.js';

export const COMMAND_NAMES = ['forward', 'up', 'proxy', 'sandbox', 'completion'] as const;

const GLOBAL_OPTIONS = ['region', 'profile', 'endpoint-url', 'log-level', 'log-format', 'resume-timeout', 'help', 'version'];
const TUNNEL_OPTIONS = ['ready-file', 'stats-interval'];
/** Each command's options (src/cli/main.ts defines them), for "did you mean". */
const COMMAND_OPTIONS: Record<string, string[]> = {
  forward: [...GLOBAL_OPTIONS, ...TUNNEL_OPTIONS, 'remote-port', 'remote-host', 'local-port', 'local-address', 'local-socket', 'document-name', 'parameters', 'reason'],
  up: [...GLOBAL_OPTIONS, ...TUNNEL_OPTIONS, 'file'],
  proxy: [...GLOBAL_OPTIONS, 'port', 'remote-host', 'document-name', 'parameters', 'reason'],
  sandbox: ['port', 'host', 'config', 'pacing', 'seed', 'log-level', 'log-format', 'help', 'version'],
  completion: ['help', 'version'],
};

const TARGET_EXAMPLES: Record<string, string> = {
  forward: 'ssm-bridge forward i-0123456789abcdef0 --remote-port 5432',
  proxy: 'ssm-bridge proxy i-0123456789abcdef0 --port 22',
};

/** The command word: the first argument that is not an option (nor an option's value, as far as can be told). */
function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      // `--log-level debug`: the value is not the command.
      if (!a.includes('=') && /^--(region|profile|endpoint-url|log-level|log-format|resume-timeout)$/.test(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

/**
 * yargs's usage message, made one actionable line: unknown commands and options get a "did you mean", a missing
 * target an example. Everything else is yargs's text on one line.
 */
export function explainUsageError(msg: string, argv: string[]): string {
  const word = commandWord(argv);
  const command = word !== undefined && (COMMAND_NAMES as readonly string[]).includes(word) ? word : undefined;
  if (word !== undefined && command === undefined) {
    const guess = closest(word, COMMAND_NAMES);
    return `unknown command "${word}"${guess ? `; did you mean "${guess}"?` : ''} (commands: ${COMMAND_NAMES.join(', ')}; see ssm-bridge --help)`;
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(msg.trim());
  if (unknown && command) {
    const listed = unknown[1]!.split(',').map((n) => n.trim());
    // yargs lists `--remote-prot` twice, also as remoteProt.
    const kebab = (n: string) => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const names = listed.filter((n) => !/[A-Z]/.test(n) || !listed.includes(kebab(n)));
    const options = COMMAND_OPTIONS[command] ?? [];
    const parts = names.map((name) => {
      const bare = name.replace(/^-+/, '');
      const guess = closest(bare, options);
      return `${name.length === 1 || name.startsWith('-') ? name : `--${name}`}${guess ? ` (did you mean --${guess}?)` : ''}`;
    });
    return `${command}: unknown option${parts.length > 1 ? 's' : ''} ${parts.join(', ')} (see ssm-bridge ${command} --help)`;
  }
  if (/^Not enough non-option arguments/.test(msg) && command && TARGET_EXAMPLES[command]) {
    return `${command} needs a target, the managed node's id: ${TARGET_EXAMPLES[command]} (see ssm-bridge ${command} --help)`;
  }
  if (/^Not enough non-option arguments/.test(msg) && !command) {
    return `name a command: ${COMMAND_NAMES.join(', ')} (see ssm-bridge --help)`;
  }
  // yargs puts some messages on several lines ("Invalid values:\n  Argument: …"): ours are one line.
  const oneLine = msg.replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
  return `${oneLine} (see ssm-bridge${command ? ` ${command}` : ''} --help)`;
}

import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger } from 'pino';
import { printable } from './printable.js';

export type LogFormat = 'json' | 'pretty';

/** Never written, whatever a caller passes in (STYLE: logging). */
const REDACT_PATHS = ['token', 'tokenValue', 'TokenValue', 'streamUrl', 'StreamUrl', 'credentials', '*.token', '*.TokenValue', '*.StreamUrl', '*.secretAccessKey', '*.sessionToken'];

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * Records people read as they are: the pretty format prints their message alone (`Listening on …`, and the
 * final error, prefixed `ssm-bridge: ` like every error line). With --log-format json they are records like any other.
 */
const BARE_MESSAGES: Record<string, (msg: string) => string> = {
  // The target, remote host and socket path come from the command line or a tunnels file: inert on the terminal.
  listening: (msg) => printable(msg),
  error: (msg) => `ssm-bridge: ${msg}`,
};

/** One readable line per record, on stderr. */
function prettyStderr(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const { level, time, msg, pid: _pid, hostname: _host, ...rest } = JSON.parse(line) as Record<string, unknown>;
          const bare = typeof rest.event === 'string' ? BARE_MESSAGES[rest.event] : undefined;
          if (bare) {
            process.stderr.write(`${bare(String(msg ?? ''))}\n`);
            continue;
          }
          const clock = new Date(time as number).toISOString().slice(11, 23);
          const extras = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? printable(v) : JSON.stringify(v)}`)
            .join(' ');
          // Values may come from the service (a close reason, an error message): inert on the terminal.
          process.stderr.write(`${clock} ${LEVEL_NAMES[level as number] ?? level} ${printable(String(msg ?? ''))}${extras ? ` ${extras}` : ''}\n`);
        } catch {
          process.stderr.write(`${line}\n`);
        }
      }
      cb();
    },
  });
}

/** pino on fd 2, always: in proxy mode stdout is the data stream. */
export function createLogger(level: string, format: LogFormat): PinoLogger {
  const options = { level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return format === 'json' ? pino(options, pino.destination({ fd: 2, sync: true })) : pino(options, prettyStderr());
}

/**
 * A record that whoever started us asked for (the listening announcement, --stats-interval lines): written at
 * info, also when the level is warn or error; only `silent` drops it.
 */
export function announce(logger: PinoLogger, fields: object, msg: string): void {
  if (logger.level === 'silent') return;
  (logger.isLevelEnabled('info') ? logger : logger.child({}, { level: 'info' })).info(fields, msg);
}

/** The error that ends the run: `event: "error"`, written whatever the level, `silent` included. */
export function finalError(logger: PinoLogger, fields: object, msg: string): void {
  (logger.isLevelEnabled('error') ? logger : logger.child({}, { level: 'error' })).error({ event: 'error', ...fields }, msg);
}

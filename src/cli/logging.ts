import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger } from 'pino';
import { printable } from './printable.js';

export type LogFormat = 'json' | 'pretty';

/** Never written, whatever a caller passes in (STYLE: logging). */
const REDACT_PATHS = ['token', 'tokenValue', 'TokenValue', 'streamUrl', 'StreamUrl', 'credentials', '*.token', '*.TokenValue', '*.StreamUrl', '*.secretAccessKey', '*.sessionToken'];

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One readable line per record, on stderr. */
function prettyStderr(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const { level, time, msg, pid: _pid, hostname: _host, ...rest } = JSON.parse(line) as Record<string, unknown>;
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

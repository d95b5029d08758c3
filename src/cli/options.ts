import { BridgeError, ErrorCode } from '../errors.js';

/** Parse `--parameters` JSON into the Parameters map: string → list of strings (a bare string becomes a list). */
export function parseParameters(json: string | undefined): Record<string, string[]> | undefined {
  if (json === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `--parameters is not valid JSON (${(err as Error).message}); expected e.g. '{"portNumber":["5432"]}'`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `--parameters must be a JSON object such as '{"portNumber":["5432"]}'`);
  }
  const out: Record<string, string[]> = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    const list = Array.isArray(raw) ? raw : [raw];
    if (!list.every((v) => typeof v === 'string' || typeof v === 'number')) {
      throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `--parameters: "${key}" must be a string or a list of strings`);
    }
    out[key] = list.map(String);
  }
  return out;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** "600", "600s", "10m", "1500ms", "1h" → milliseconds; a bare number is seconds. */
export function parseDurationMs(text: string | number, option: string): number {
  const match = DURATION.exec(String(text).trim());
  if (!match) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${option} must be a duration such as 600, 90s, 10m or 1h (got ${JSON.stringify(text)})`);
  const n = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

export function parsePort(value: unknown, option: string, allowZero: boolean): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${option} must be a port number from ${allowZero ? 0 : 1} to 65535 (got ${JSON.stringify(value)})`);
  }
  return n;
}

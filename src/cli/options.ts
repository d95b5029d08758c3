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

/** The longest delay a Node timer holds (2^31 − 1 ms, ~24.8 days); beyond it, it fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** "600", "600s", "10m", "1500ms", "1h" → milliseconds; a bare number is seconds. At most ~24 days. */
export function parseDurationMs(text: string | number, option: string): number {
  const match = DURATION.exec(String(text).trim());
  if (!match) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${option} must be a duration such as 600, 90s, 10m or 1h (got ${JSON.stringify(echo(String(text)))})`);
  const n = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  const ms = Math.round(n * factor);
  if (ms > MAX_TIMER_MS) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${option} is too long: at most 24 days (576h)`);
  return ms;
}

/** User input echoed in a message, cut short: a 10 MB argument must not become a 10 MB error line. */
export function echo(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** A target as StartSession takes it: 1–400 characters (SPEC §1). */
export function checkTarget(target: string): string {
  if (target.length < 1 || target.length > 400) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `the target must be 1 to 400 characters, such as i-0123456789abcdef0 (got ${JSON.stringify(echo(target))})`);
  }
  return target;
}

const REGION = /^[a-z]{2,}(-[a-z0-9]+)+-\d+$/;

/**
 * --region and an empty --endpoint-url, checked before any AWS call: empty would silently mean the real AWS
 * endpoint, and a malformed region failed later as a network error (exit 9 instead of 2).
 */
export function checkAwsOptions(options: { region?: string | undefined; endpointUrl?: string | undefined }): void {
  if (options.region !== undefined && !REGION.test(options.region)) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `--region must be a region name such as us-east-1 or eu-west-2 (got ${JSON.stringify(echo(options.region))})`);
  }
  // Empty would silently mean the real AWS endpoint; the URL itself is checked where it is resolved (session/aws-config.ts).
  if (options.endpointUrl !== undefined && options.endpointUrl.trim() === '') {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, '--endpoint-url is empty; give a URL such as http://127.0.0.1:4566 (the sandbox), or leave it out to use AWS');
  }
}

/** `--sessions N` / `sessions: N`: how many sessions stripe a tunnel. */
export function parseSessions(value: unknown, option: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${option} must be a whole number from 1 to 16 (got ${JSON.stringify(value)})`);
  return n;
}

export function parsePort(value: unknown, option: string, allowZero: boolean): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${option} must be a port number from ${allowZero ? 0 : 1} to 65535 (got ${Number.isNaN(value) ? 'something that is not a number' : JSON.stringify(value)})`);
  }
  return n;
}

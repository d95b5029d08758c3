import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { CLI_PATH, sandboxEnv, type CliRun } from './cli.js';
import { within } from './servers.js';

/** What GET /_sandbox/sessions reports per session (the fields the resume tests read). */
export interface SandboxSessionView {
  sessionId: string;
  target: string;
  state: string;
  terminatedReason?: string;
  /** Registry and gateway counters (src/sandbox/registry.ts SessionCounters). */
  counters: {
    resumeSessionCalls: number;
    /** Data-channel upgrades whose SigV4 signature (service ssmmessages) the sandbox verified. */
    signedUpgrades: number;
    connections: number;
    reconnects: number;
    payloadBytesToClient: number;
    payloadBytesFromClient: number;
    duplicatesReceived: number;
    resends: number;
    bytesIn: number;
    bytesOut: number;
    dropped: number;
    duplicated: number;
    reordered: number;
  };
}

export async function listSandboxSessions(endpoint: string): Promise<SandboxSessionView[]> {
  const res = await within(fetch(`${endpoint}/_sandbox/sessions`), 5_000, 'GET /_sandbox/sessions');
  return (await res.json()) as SandboxSessionView[];
}

export async function sandboxSession(endpoint: string, sessionId: string): Promise<SandboxSessionView> {
  const res = await within(fetch(`${endpoint}/_sandbox/sessions/${encodeURIComponent(sessionId)}`), 5_000, `GET /_sandbox/sessions/${sessionId}`);
  return (await res.json()) as SandboxSessionView;
}

/** The one session started since `before` (a set of ids listed earlier); fails if there is not exactly one. */
export async function newSessionSince(endpoint: string, before: Set<string>): Promise<SandboxSessionView> {
  const fresh = (await listSandboxSessions(endpoint)).filter((s) => !before.has(s.sessionId));
  if (fresh.length !== 1) throw new Error(`expected one new session, found ${fresh.length}: ${fresh.map((s) => s.sessionId).join(', ')}`);
  return fresh[0]!;
}

export async function sessionIds(endpoint: string): Promise<Set<string>> {
  return new Set((await listSandboxSessions(endpoint)).map((s) => s.sessionId));
}

/** The pino records of a `--log-format json` run (other lines, such as the readiness line, are skipped). */
export function jsonRecords(stderr: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partial line at the end of the buffer
    }
  }
  return out;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface ProxyExchangeResult {
  run: CliRun;
  upOk: boolean;
  downOk: boolean;
  /** Payload bytes read back on stdout (without the digests). */
  received: number;
  /** Everything on stdout beyond payload + digests (must be 0). */
  extraBytes: number;
  exitCode: number;
}

/**
 * `ssm-bridge proxy` against exchangeServer (test/helpers/servers.ts) in stream mode: write the 8-byte
 * length header and `bytes` random bytes on stdin, read as many random bytes and the two hex digests back on
 * stdout. stdin stays open until the reply is complete (as ssh keeps it open): ending it first would make
 * the proxy terminate the session. The server closes after the digests, which ends the session; the proxy
 * exits 0. `duringUpload` runs once half of the upload is written (e.g. to cut the WebSocket then).
 */
export async function proxyExchange(options: {
  args: string[];
  bytes: number;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  onRun?: (run: CliRun) => void;
}): Promise<ProxyExchangeResult> {
  const { bytes } = options;
  const run = spawnProxy(options.args, options.env);
  options.onRun?.(run);
  const upHash = createHash('sha256');
  const downHash = createHash('sha256');
  let received = 0;
  let tail = Buffer.alloc(0);
  const replyComplete = new Promise<void>((resolve, reject) => {
    run.child.stdout!.on('data', (chunk: Buffer) => {
      const room = Math.max(0, bytes - received);
      if (room > 0) downHash.update(chunk.subarray(0, room));
      if (chunk.length > room) tail = Buffer.concat([tail, chunk.subarray(room)]);
      received += Math.min(room, chunk.length);
      if (received >= bytes && tail.length >= 128) resolve();
    });
    run.child.stdout!.on('end', () => resolve());
    void run.exited.then((code) => (received >= bytes && tail.length >= 128 ? resolve() : reject(new Error(`proxy exited ${code} after ${received} of ${bytes} bytes; stderr:\n${run.stderr()}`))));
  });
  const stdin = run.child.stdin!;
  stdin.on('error', () => {});
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(bytes));
  stdin.write(header);
  let left = bytes;
  while (left > 0) {
    const chunk = randomBytes(Math.min(64 * 1024, left));
    upHash.update(chunk);
    left -= chunk.length;
    if (!stdin.write(chunk)) await within(new Promise((r) => stdin.once('drain', r)), options.timeoutMs, 'proxy stdin drain');
  }
  await within(replyComplete, options.timeoutMs, `proxy reply of ${bytes} bytes`);
  const exitCode = await within(run.exited, 15_000, 'proxy exit after the remote side closed');
  stdin.end();
  const digests = tail.toString('utf8');
  return {
    run,
    upOk: digests.slice(0, 64) === upHash.digest('hex'),
    downOk: digests.slice(64, 128) === downHash.digest('hex'),
    received,
    extraBytes: Math.max(0, tail.length - 128),
    exitCode,
  };
}

/** Like runCli, but stdout is binary session data: it is not collected as text (stdout() returns ''). */
function spawnProxy(args: string[], env?: NodeJS.ProcessEnv): CliRun {
  const child = spawn(process.execPath, [CLI_PATH, 'proxy', ...args], { env: env ?? sandboxEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 0)));
  });
  return { child, stderr: () => stderr, stdout: () => '', exited };
}

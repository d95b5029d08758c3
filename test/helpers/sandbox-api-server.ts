import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createApiHandler } from '../../src/sandbox/api/index.js';
import { loadSandboxConfig, type SandboxConfig, type SandboxConfigInput } from '../../src/sandbox/config.js';
import { createControlHandler, FaultState, type ControlHandlerOptions } from '../../src/sandbox/faults/index.js';
import { SessionRegistry, type SessionRegistryOptions } from '../../src/sandbox/registry.js';
import { SANDBOX_CREDENTIALS } from '../../src/sandbox/credentials.js';
import { sdkSignedHeaders } from './sigv4.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** The sandbox's SSM API and control API on one real HTTP server, without the gateway. */
export interface SandboxApiServer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  config: SandboxConfig;
  registry: SessionRegistry;
  faults: FaultState;
  /** An SSMClient on the sandbox signing with SANDBOX_CREDENTIALS; destroyed by close(). */
  ssm(maxAttempts?: number): SSMClient;
  close(): Promise<void>;
}

export { SANDBOX_CREDENTIALS };

/** Route as the sandbox will: `/_sandbox/…` to the control API, everything else to the SSM API. */
export async function startSandboxApiServer(
  config: SandboxConfigInput,
  options: { seed?: number; registry?: SessionRegistryOptions; control?: ControlHandlerOptions } = {},
): Promise<SandboxApiServer> {
  const parsed = loadSandboxConfig(config);
  const registry = new SessionRegistry(parsed, options.registry);
  const faults = new FaultState(options.seed ?? 1);
  const api = createApiHandler(registry, faults, parsed);
  const control = createControlHandler(registry, faults, options.control);
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').startsWith('/_sandbox/')) control(req, res);
    else api(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: SSMClient[] = [];
  return {
    endpoint,
    port,
    config: parsed,
    registry,
    faults,
    ssm(maxAttempts = 1) {
      const client = new SSMClient({ endpoint, region: 'us-east-1', credentials: SANDBOX_CREDENTIALS, maxAttempts });
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) c.destroy();
      registry.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & { name: string; $fault?: string; $metadata?: { httpStatusCode?: number; requestId?: string } }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { name: string };
  }
  throw new Error('expected the call to fail, but it succeeded');
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

/** A raw HTTP request (fetch cannot set Host), bounded by a timeout. */
export function rawRequest(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: options.method ?? 'POST', path: options.path ?? '/', headers: options.headers ?? {}, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 5_000, () => req.destroy(new Error('raw request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Headers of an SSM API call with `body`, signed by the SDK's signer for the sandbox at `port` (service ssm,
 * us-east-1, SANDBOX_CREDENTIALS). `extra` headers are sent and signed too (a Host header among them included).
 */
export async function ssmHeaders(port: number, action: string, body: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return sdkSignedHeaders({
    url: `http://127.0.0.1:${port}/`,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonSSM.${action}`, ...extra },
    body,
  });
}

/** Poll until `check` holds, at most `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

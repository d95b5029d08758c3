import { execFile } from 'node:child_process';
import { SSMClient, StartSessionCommand, TerminateSessionCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { SANDBOX_CREDENTIALS } from '../../../src/sandbox/credentials.js';
import type { SandboxConfigInput } from '../../../src/sandbox/config.js';
import { rejectionOf, startSandboxApiServer, type SandboxApiServer } from '../../helpers/sandbox-api-server.js';

const TARGET = 'i-0123456789abcdef0';
const EXTRA = { accessKeyId: 'AKIDEXTRA0000001', secretAccessKey: 'extra/secret+1' };
const MISMATCH = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

let api: SandboxApiServer | undefined;
const clients: SSMClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await api?.close();
  api = undefined;
});

async function sandbox(extra: Partial<SandboxConfigInput> = {}): Promise<SandboxApiServer> {
  api = await startSandboxApiServer({ targets: { [TARGET]: { ports: { '22': '127.0.0.1:2222' } } }, ...extra });
  return api;
}

function client(endpoint: string, options: { region?: string; credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } } = {}): SSMClient {
  const c = new SSMClient({ endpoint, region: options.region ?? 'us-east-1', credentials: options.credentials ?? SANDBOX_CREDENTIALS, maxAttempts: 1 });
  clients.push(c);
  return c;
}

const start = (c: SSMClient) => c.send(new StartSessionCommand({ Target: TARGET, DocumentName: 'AWS-StartSSHSession' }));

describe('SigV4 through the sandbox API, with the SSM SDK client', () => {
  it('serves the sandbox pair, a configured extra pair, and session tokens as given', async () => {
    const { endpoint } = await sandbox({ credentials: [EXTRA] });
    expect((await start(client(endpoint))).SessionId).toMatch(/^sandbox-/);
    expect((await start(client(endpoint, { credentials: EXTRA }))).SessionId).toMatch(/^sandbox-/);
    expect((await start(client(endpoint, { credentials: { ...EXTRA, sessionToken: 'any-token-at-all' } }))).SessionId).toMatch(/^sandbox-/);
  });

  it('refuses the wrong region, an unknown key and a wrong secret with the service errors', async () => {
    const { endpoint } = await sandbox();
    const region = await rejectionOf(start(client(endpoint, { region: 'eu-west-1' })));
    expect([region.name, region.$metadata?.httpStatusCode, region.message]).toEqual(['InvalidSignatureException', 403, 'Credential should be scoped to a valid region.']);
    const unknown = await rejectionOf(start(client(endpoint, { credentials: EXTRA })));
    expect([unknown.name, unknown.$metadata?.httpStatusCode, unknown.message]).toEqual(['UnrecognizedClientException', 403, 'The security token included in the request is invalid.']);
    const secret = await rejectionOf(start(client(endpoint, { credentials: { accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'sandbox-secret' } })));
    expect([secret.name, secret.$metadata?.httpStatusCode, secret.message]).toEqual(['InvalidSignatureException', 403, MISMATCH]);
    expect(api!.registry.list()).toHaveLength(0);
  });

  it("scopes to the config's region", async () => {
    const { endpoint } = await sandbox({ region: 'eu-west-1' });
    expect((await rejectionOf(start(client(endpoint)))).message).toBe('Credential should be scoped to a valid region.');
    expect((await start(client(endpoint, { region: 'eu-west-1' }))).SessionId).toMatch(/^sandbox-/);
  });
});

/** AWS CLI v1, when installed: botocore's signer, not the JS SDK's. */
const awsCli = await new Promise<boolean>((resolve) => execFile('aws', ['--version'], { timeout: 10_000 }, (err) => resolve(!err)));

function aws(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('aws', args, { timeout: 30_000, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe.skipIf(!awsCli)('SigV4 through the sandbox API, with AWS CLI v1 (botocore)', () => {
  it('verifies what botocore signs, and refuses its request with another secret', async () => {
    const { endpoint } = await sandbox();
    const session = await start(client(endpoint));
    const env = { AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1' };
    const resumed = await aws(['ssm', 'resume-session', '--session-id', session.SessionId!, '--endpoint-url', endpoint, '--output', 'json'], env);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ SessionId: session.SessionId, StreamUrl: session.StreamUrl });
    const wrong = await aws(['ssm', 'terminate-session', '--session-id', session.SessionId!, '--endpoint-url', endpoint], { ...env, AWS_SECRET_ACCESS_KEY: 'sandbox-secret' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/InvalidSignatureException.*The request signature we calculated does not match/);
    expect(api!.registry.get(session.SessionId!)?.state).toBe('pending');
    await client(endpoint).send(new TerminateSessionCommand({ SessionId: session.SessionId! }));
  }, 60_000);
});

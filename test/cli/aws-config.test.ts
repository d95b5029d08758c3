import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TARGET } from '../../src/sandbox/demo-services.js';
import { parseAwsIni } from '../../src/session/aws-config.js';
import { runCli } from '../helpers/cli.js';
import { startTestSandbox } from '../helpers/sandbox.js';

// AWS CLI habits: profiles from a temporary config file, the environment variables the AWS CLI reads.
let env: Awaited<ReturnType<typeof startTestSandbox>>;
let dir: string;

beforeAll(async () => {
  // The sandbox verifies SigV4: it must know the key pairs the profiles below sign with.
  const keys = ['AKIDDEFAULT', 'AKIDDEV', 'AKIDSVC', 'AKIDIGN', 'AKIDBAD', 'AKID'].map((accessKeyId) => ({ accessKeyId, secretAccessKey: 's' }));
  env = await startTestSandbox({}, { config: { credentials: keys } });
  dir = mkdtempSync(join(tmpdir(), 'ssm-bridge-aws-config-'));
  const endpoint = env.sandbox.endpoint;
  writeFileSync(
    join(dir, 'config'),
    [
      '[default]',
      'region = eu-central-1',
      '',
      '[profile dev]',
      'region = us-east-1',
      `endpoint_url = ${endpoint}   # the sandbox`,
      '',
      '[profile svc]',
      'region = us-east-1',
      'services = local',
      'endpoint_url = http://127.0.0.1:1',
      '',
      '[services local]',
      'ssm =',
      `  endpoint_url = ${endpoint}`,
      '',
      '[profile ignoring]',
      'region = us-east-1',
      'endpoint_url = http://127.0.0.1:1',
      'ignore_configured_endpoint_urls = true',
      '',
      '[profile bad-url]',
      'region = us-east-1',
      'endpoint_url = 127.0.0.1:4566',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'credentials'),
    ['[default]', 'aws_access_key_id = AKIDDEFAULT', 'aws_secret_access_key = s', '[dev]', 'aws_access_key_id = AKIDDEV', 'aws_secret_access_key = s', '[svc]', 'aws_access_key_id = AKIDSVC', 'aws_secret_access_key = s', '[ignoring]', 'aws_access_key_id = AKIDIGN', 'aws_secret_access_key = s', '[bad-url]', 'aws_access_key_id = AKIDBAD', 'aws_secret_access_key = s'].join('\n'),
  );
});

afterAll(async () => {
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** No AWS settings from the host: only the temporary files and what the test adds. */
function awsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: dir, AWS_CONFIG_FILE: join(dir, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'), AWS_EC2_METADATA_DISABLED: 'true', ...extra };
}

/** `forward` in exec mode with a command that exits 0 at once: exit 0 means the session started. */
async function forward(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  const run = runCli(['forward', DEMO_TARGET, '--remote-port', '80', ...args, '--', process.execPath, '-e', ''], { env: awsEnv(extraEnv) });
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 20_000);
  const code = await run.exited;
  clearTimeout(timer);
  return { code, stderr: run.stderr() };
}

describe('AWS config like the AWS CLI', () => {
  it('--profile uses the profile\'s region, credentials and endpoint_url', async () => {
    const { code, stderr } = await forward(['--profile', 'dev']);
    expect(stderr).toContain(`Listening on 127.0.0.1:`);
    expect(code).toBe(0);
  });

  it('--profile uses the ssm endpoint of the profile\'s services section, before its endpoint_url', async () => {
    const { code, stderr } = await forward(['--profile', 'svc']);
    expect(stderr).toContain('Listening on 127.0.0.1:');
    expect(code).toBe(0);
  });

  it('AWS_ENDPOINT_URL_SSM wins over the profile\'s endpoints and AWS_ENDPOINT_URL; --endpoint-url over all', async () => {
    expect((await forward(['--profile', 'svc'], { AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:1' })).code).toBe(9);
    expect((await forward(['--profile', 'dev'], { AWS_ENDPOINT_URL_SSM: env.sandbox.endpoint, AWS_ENDPOINT_URL: 'http://127.0.0.1:1' })).code).toBe(0);
    expect((await forward(['--profile', 'ignoring', '--endpoint-url', env.sandbox.endpoint])).code).toBe(0);
  });

  it('AWS_DEFAULT_REGION alone is a region', async () => {
    const { code, stderr } = await forward(['--endpoint-url', env.sandbox.endpoint], { HOME: join(dir, 'nowhere'), AWS_CONFIG_FILE: join(dir, 'none'), AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 's', AWS_DEFAULT_REGION: 'us-east-1' });
    expect(stderr).not.toContain('region');
    expect(code).toBe(0);
  });

  it('a profile that does not exist is named, in one line, exit 2', async () => {
    for (const [args, extra, via] of [
      [['--profile', 'dve'], {}, '--profile'],
      [[], { AWS_PROFILE: 'dve' }, 'AWS_PROFILE'],
    ] as const) {
      const { code, stderr } = await forward([...args], extra);
      expect(code).toBe(2);
      expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^ssm-bridge: AWS profile "dve" \\(${via}\\) is in neither .*config nor .*credentials`))]);
    }
  });

  it('a profile plus static keys in the environment: one warning line of ours, not the SDK\'s prose', async () => {
    const { code, stderr } = await forward(['--log-format', 'json'], { AWS_PROFILE: 'dev', AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 's' });
    expect(code).toBe(0);
    expect(stderr).not.toContain('Multiple credential sources');
    const warnings = stderr.split('\n').filter((l) => l.includes('aws-credential-sources'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, event: 'aws-credential-sources' });
  });

  it('an endpoint URL without a scheme is one line naming where it came from, exit 2', async () => {
    const flag = await forward(['--profile', 'dev', '--endpoint-url', '127.0.0.1:4566']);
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim()).toBe('ssm-bridge: --endpoint-url must be an http:// or https:// URL (got "127.0.0.1:4566"); did you mean http://127.0.0.1:4566?');
    const profile = await forward(['--profile', 'bad-url']);
    expect(profile.code).toBe(2);
    expect(profile.stderr.trim()).toContain('endpoint_url of profile "bad-url" must be an http:// or https:// URL');
  });
});

describe('parseAwsIni', () => {
  it('reads sections, comments and nested service properties', () => {
    const ini = parseAwsIni('# c\n[profile  a]\nregion=us-east-1 ; note\nservices = s\n[services s]\nssm =\n  endpoint_url = http://x:1\nother = 2\n');
    expect(ini.get('profile a')).toEqual({ region: 'us-east-1', services: 's' });
    expect(ini.get('services s')).toEqual({ ssm: '', 'ssm.endpoint_url': 'http://x:1', other: '2' });
  });

  it('a region the endpoint does not serve is named as a region problem, exit 2 (not "log in again")', async () => {
    const { code, stderr } = await forward(['--profile', 'dev', '--region', 'eu-west-3']);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^ssm-bridge: StartSession was signed for a region the endpoint does not serve .*; check --region/);
  });
});

import { describe, expect, it } from 'vitest';
import { localEndpointFor } from '../../src/cli/commands/plugin.js';
import { parsePluginArgs, parseRequest, pluginMode, RESPONSE_ENV_NAME } from '../../src/cli/plugin-args.js';
import { BridgeError } from '../../src/errors.js';
import { CLIENT_VERSION, compareVersions } from '../../src/protocol/index.js';

const TOKEN = 'secret-token-value-0123456789';
const RESPONSE = JSON.stringify({ SessionId: 's-1', TokenValue: TOKEN, StreamUrl: 'wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s-1?role=publish_subscribe' });
const REQUEST = JSON.stringify({ Target: 'i-0123', DocumentName: 'AWS-StartPortForwardingSession', Parameters: { portNumber: ['5432'], localPortNumber: ['0'] } });
const ENDPOINT = 'https://ssm.us-east-1.amazonaws.com';
const CREDENTIALS = { sessionId: 's-1', tokenValue: TOKEN, streamUrl: 'wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/s-1?role=publish_subscribe' };

/** The error a parse throws: one line, never the token. */
function parseError(args: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parsePluginArgs(args, env);
  } catch (err) {
    expect(err).toBeInstanceOf(BridgeError);
    const message = (err as BridgeError).message;
    expect(message).not.toContain(TOKEN);
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected the arguments to be rejected');
}

describe('plugin arguments (the AWS CLI order: response, region, StartSession, profile, request, endpoint)', () => {
  it('the response from the environment variable the AWS CLI names', () => {
    const parsed = parsePluginArgs([RESPONSE_ENV_NAME, 'us-east-1', 'StartSession', '', REQUEST, ENDPOINT], { [RESPONSE_ENV_NAME]: RESPONSE });
    expect(parsed).toEqual({
      kind: 'session',
      credentials: CREDENTIALS,
      responseEnv: RESPONSE_ENV_NAME,
      region: 'us-east-1',
      profile: '',
      request: { target: 'i-0123', documentName: 'AWS-StartPortForwardingSession', parameters: { portNumber: ['5432'], localPortNumber: ['0'] } },
      endpointUrl: ENDPOINT,
    });
  });

  it('any variable with that prefix, as the official plugin accepts; the response in argv (older AWS CLIs)', () => {
    const name = `${RESPONSE_ENV_NAME}_2`;
    expect(parsePluginArgs([name, 'eu-west-1', 'StartSession', 'dev', REQUEST, ENDPOINT], { [name]: RESPONSE })).toMatchObject({ credentials: CREDENTIALS, responseEnv: name, profile: 'dev', region: 'eu-west-1' });
    const fromArgv = parsePluginArgs([RESPONSE, 'us-east-1', 'StartSession', 'dev', REQUEST, ENDPOINT], {});
    expect(fromArgv).toMatchObject({ credentials: CREDENTIALS, profile: 'dev' });
    expect(fromArgv).not.toHaveProperty('responseEnv');
  });

  it('the response carries the AWS CLI\'s ResponseMetadata too (argv form): ignored', () => {
    const withMetadata = JSON.stringify({ ...JSON.parse(RESPONSE), ResponseMetadata: { RequestId: 'r', HTTPStatusCode: 200 } });
    expect(parsePluginArgs([withMetadata, 'us-east-1', 'StartSession', '', REQUEST, ENDPOINT], {})).toMatchObject({ credentials: CREDENTIALS });
  });

  it('the oldest AWS CLIs: response, region and operation only (no profile, request or endpoint)', () => {
    expect(parsePluginArgs([RESPONSE, 'us-east-1', 'StartSession'], {})).toEqual({ kind: 'session', credentials: CREDENTIALS, region: 'us-east-1', profile: '' });
  });

  it('arguments after the sixth are ignored, as the official plugin does (a newer CLI may add some)', () => {
    expect(parsePluginArgs([RESPONSE, 'us-east-1', 'StartSession', '', REQUEST, ENDPOINT, 'extra'], {})).toMatchObject({ endpointUrl: ENDPOINT });
  });

  it('no arguments: "installed"; --version alone: the version', () => {
    expect(parsePluginArgs([], {})).toEqual({ kind: 'installed' });
    expect(parsePluginArgs(['--version'], {})).toEqual({ kind: 'version' });
  });

  it('the version the AWS CLI sees is above 1.2.497.0 and matches its pattern, so it hands the token over in the environment', () => {
    // awscli/customizations/sessionmanager.py: VersionRequirement(min_version="1.2.497.0"), strictly greater.
    expect(CLIENT_VERSION).toMatch(/^\d+(\.\d+){0,3}$/);
    expect(compareVersions(CLIENT_VERSION, '1.2.497.0')).toBe(1);
  });

  it('rejects, in one line without the token: a missing variable, bad JSON, a response without a token, another operation, too few arguments', () => {
    expect(parseError([RESPONSE_ENV_NAME, 'us-east-1', 'StartSession', '', REQUEST, ENDPOINT])).toMatch(/AWS_SSM_START_SESSION_RESPONSE \(argument 1\) is not set.*aws ssm start-session/);
    expect(parseError([`{"SessionId":"s","TokenValue":"${TOKEN}"`, 'us-east-1', 'StartSession', '', REQUEST, ENDPOINT])).toMatch(/StartSession response \(argument 1\) is not valid JSON/);
    expect(parseError([JSON.stringify({ SessionId: 's', StreamUrl: 'wss://x' }), 'us-east-1', 'StartSession'])).toMatch(/has no TokenValue/);
    expect(parseError([RESPONSE, 'us-east-1', 'ResumeSession', '', REQUEST, ENDPOINT])).toMatch(/invalid operation "ResumeSession" \(argument 3\); the only one is StartSession/);
    expect(parseError([RESPONSE, 'us-east-1'])).toMatch(/^unknown operation "<JSON>"/);
    expect(parseError(['--help'])).toMatch(/^unknown operation "--help"/);
    expect(parseError([RESPONSE_ENV_NAME, 'us-east-1', 'StartSession', '', REQUEST, ENDPOINT], { [RESPONSE_ENV_NAME]: `[${TOKEN}` })).toMatch(/in AWS_SSM_START_SESSION_RESPONSE is not valid JSON/);
  });

  it('the request: Target required, Parameters as lists of strings (a bare value becomes a list), Reason kept', () => {
    expect(parseRequest('{"Target":"i-1","Parameters":{"portNumber":"22","x":[1,"2"]},"Reason":"why"}')).toEqual({ target: 'i-1', parameters: { portNumber: ['22'], x: ['1', '2'] }, reason: 'why' });
    expect(parseRequest('{"Target":"ecs:cluster_task_container"}')).toEqual({ target: 'ecs:cluster_task_container', parameters: {} });
    expect(() => parseRequest('{"DocumentName":"AWS-StartSSHSession"}')).toThrow(/has no Target/);
    expect(() => parseRequest('{"Target":"i-1","Parameters":{"p":[{"a":1}]}}')).toThrow(/parameter "p" must be a string or a list of strings/);
    expect(() => parseRequest('[1]')).toThrow(/must be a JSON object/);
  });
});

describe('which sessions ssm-bridge serves and which go to the official plugin', () => {
  it('no document (a shell, ecs execute-command) and the shell and command documents: the official plugin', () => {
    expect(pluginMode(undefined)).toBe('fallback');
    expect(pluginMode({ target: 'i-1', parameters: {} })).toBe('fallback');
    for (const name of ['SSM-SessionManagerRunShell', 'AWS-StartInteractiveCommand', 'AWS-StartNonInteractiveCommand', 'arn:aws:ssm:us-east-1::document/AWS-StartInteractiveCommand']) {
      expect(pluginMode({ target: 'i-1', documentName: name, parameters: {} })).toBe('fallback');
    }
  });

  it('Port documents, built-in or custom: ssm-bridge', () => {
    for (const name of ['AWS-StartPortForwardingSession', 'AWS-StartPortForwardingSessionToRemoteHost', 'AWS-StartSSHSession', 'My-PortForwarding']) {
      expect(pluginMode({ target: 'i-1', documentName: name, parameters: {} })).toBe('port');
    }
  });

  it('the local listener: the session properties first, then the request, then any free port; a unix socket when asked', () => {
    const request = { target: 'i-1', parameters: { localPortNumber: ['5433'] } };
    expect(localEndpointFor({ type: 'LocalPortForwarding', localPortNumber: '6000' }, request)).toEqual({ kind: 'tcp', address: '127.0.0.1', port: 6000 });
    expect(localEndpointFor({ type: 'LocalPortForwarding' }, request)).toEqual({ kind: 'tcp', address: '127.0.0.1', port: 5433 });
    expect(localEndpointFor({ type: 'LocalPortForwarding', localPortNumber: '' }, { target: 'i-1', parameters: {} })).toEqual({ kind: 'tcp', address: '127.0.0.1', port: 0 });
    expect(localEndpointFor({ type: 'LocalPortForwarding', localConnectionType: 'unix', localUnixSocket: '/tmp/db.sock' }, request)).toEqual({ kind: 'unix', path: '/tmp/db.sock' });
    expect(() => localEndpointFor({ type: 'LocalPortForwarding', localPortNumber: '70000' }, request)).toThrow(/localPortNumber must be a port number from 0 to 65535/);
    expect(() => localEndpointFor({ type: 'LocalPortForwarding', localConnectionType: 'unix' }, request)).toThrow(/names none/);
  });
});

import { BridgeError, ErrorCode } from '../errors.js';
import type { SessionCredentials } from '../session/index.js';
import { echo } from './options.js';

/*
 * `ssm-bridge plugin …`: the positional arguments the AWS CLI gives the executable `session-manager-plugin`
 * (awscli/customizations/sessionmanager.py, v1 and v2), in its order:
 *
 *   1 the StartSession response as JSON, or the name of an environment variable holding it
 *     (AWS_SSM_START_SESSION_RESPONSE, when the plugin reports a version above 1.2.497.0)
 *   2 the region   3 the operation, "StartSession"   4 the profile ("" when none was given)
 *   5 the StartSession request as JSON   6 the SSM endpoint URL
 *
 * Older CLIs pass only the first three (no profile, request or endpoint). Arguments after the sixth are
 * ignored, as the official plugin ignores them: a newer CLI may add some.
 */

/** The environment variable the AWS CLI puts the response in; the official plugin accepts any name with this prefix. */
export const RESPONSE_ENV_NAME = 'AWS_SSM_START_SESSION_RESPONSE';

/** The StartSession request, as the AWS CLI passes it on (its own parameter names). */
export interface PluginRequest {
  target: string;
  documentName?: string;
  parameters: Record<string, string[]>;
  reason?: string;
}

export type PluginInvocation =
  /** No arguments: the official plugin says it is installed (install scripts check that). */
  | { kind: 'installed' }
  | { kind: 'version' }
  | {
      kind: 'session';
      credentials: SessionCredentials;
      /** The environment variable the response came from, when it did (argv otherwise). */
      responseEnv?: string;
      region: string;
      /** Empty: the AWS CLI was given no --profile; the default chain applies (AWS_PROFILE and so on). */
      profile: string;
      request?: PluginRequest;
      endpointUrl?: string;
    };

const usage = (message: string): BridgeError => new BridgeError(ErrorCode.INVALID_ARGUMENT, message);

function parseObject(json: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    // Never the text itself: the response carries the session token.
    throw usage(`${what} is not valid JSON; ssm-bridge plugin takes the arguments the AWS CLI gives session-manager-plugin (run it through aws ssm start-session)`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw usage(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function parseResponse(json: string, what: string): SessionCredentials {
  const obj = parseObject(json, what);
  const field = (name: string): string => {
    const v = obj[name];
    if (typeof v !== 'string' || v === '') throw usage(`${what} has no ${name}; expected StartSession's answer with SessionId, TokenValue and StreamUrl`);
    return v;
  };
  return { sessionId: field('SessionId'), tokenValue: field('TokenValue'), streamUrl: field('StreamUrl') };
}

export function parseRequest(json: string): PluginRequest {
  const what = 'the StartSession request (argument 5)';
  const obj = parseObject(json, what);
  const target = obj.Target;
  if (typeof target !== 'string' || target === '') throw usage(`${what} has no Target`);
  const request: PluginRequest = { target, parameters: {} };
  if (obj.DocumentName !== undefined) {
    if (typeof obj.DocumentName !== 'string') throw usage(`${what}: DocumentName must be a string`);
    request.documentName = obj.DocumentName;
  }
  if (typeof obj.Reason === 'string') request.reason = obj.Reason;
  if (obj.Parameters !== undefined && obj.Parameters !== null) {
    if (typeof obj.Parameters !== 'object' || Array.isArray(obj.Parameters)) throw usage(`${what}: Parameters must be an object`);
    for (const [key, raw] of Object.entries(obj.Parameters as Record<string, unknown>)) {
      const list = Array.isArray(raw) ? raw : [raw];
      if (!list.every((v) => typeof v === 'string' || typeof v === 'number')) throw usage(`${what}: parameter ${JSON.stringify(echo(key))} must be a string or a list of strings`);
      request.parameters[key] = list.map(String);
    }
  }
  return request;
}

/** Parse the arguments after `plugin`. Throws a one-line BridgeError (INVALID_ARGUMENT) that never quotes the token. */
export function parsePluginArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env): PluginInvocation {
  if (args.length === 0) return { kind: 'installed' };
  if (args.length === 1 && args[0] === '--version') return { kind: 'version' };
  if (args.length < 3) {
    throw usage(`unknown operation ${JSON.stringify(echo(args[0]!.startsWith('{') ? '<JSON>' : args[0]!))}; ssm-bridge plugin takes the arguments the AWS CLI gives session-manager-plugin, or --version`);
  }
  const [response, region, operation, profile = '', requestJson, endpointUrl] = args as [string, string, string, string?, string?, string?];
  if (operation !== 'StartSession') throw usage(`invalid operation ${JSON.stringify(echo(operation))} (argument 3); the only one is StartSession`);
  let credentials: SessionCredentials;
  let responseEnv: string | undefined;
  if (response.startsWith(RESPONSE_ENV_NAME)) {
    responseEnv = response;
    const value = env[response];
    if (value === undefined || value === '') {
      throw usage(`environment variable ${echo(response)} (argument 1) is not set; the AWS CLI sets it for the plugin, so run this through aws ssm start-session`);
    }
    credentials = parseResponse(value, `the StartSession response in ${echo(response)}`);
  } else {
    credentials = parseResponse(response, 'the StartSession response (argument 1)');
  }
  return {
    kind: 'session',
    credentials,
    ...(responseEnv !== undefined ? { responseEnv } : {}),
    region,
    profile,
    ...(requestJson !== undefined && requestJson !== '' ? { request: parseRequest(requestJson) } : {}),
    ...(endpointUrl ? { endpointUrl } : {}),
  };
}

/** Session documents that start shells or commands (the official plugin's Standard_Stream and InteractiveCommands). */
const NON_PORT_DOCUMENTS = new Set(['SSM-SessionManagerRunShell', 'AWS-StartInteractiveCommand', 'AWS-StartNonInteractiveCommand', 'AWS-PasswordReset']);
const DOCUMENT_ARN = /^arn:[^:]+:ssm:[^:]*:[^:]*:document\/(.+)$/;

/**
 * Whether ssm-bridge serves the session ('port') or hands it to the official plugin ('fallback'), decided
 * before connecting (a token opens one data channel): no document (a shell, as `aws ssm start-session
 * --target` alone or `aws ecs execute-command` start), or a shell or command document, is a fallback.
 * Any other document is taken as a Port document; the handshake confirms it.
 */
export function pluginMode(request: PluginRequest | undefined): 'port' | 'fallback' {
  const name = request?.documentName;
  if (name === undefined || name === '') return 'fallback';
  return NON_PORT_DOCUMENTS.has(DOCUMENT_ARN.exec(name)?.[1] ?? name) ? 'fallback' : 'port';
}

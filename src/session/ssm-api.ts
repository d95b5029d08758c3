import { BridgeError, ErrorCode } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { resolveAwsConfig } from './aws-config.js';

/** Where and as whom to call the SSM API. Everything optional follows the AWS SDK's default chains. */
export interface AwsOptions {
  region?: string;
  profile?: string;
  /** e.g. the sandbox's http://127.0.0.1:PORT */
  endpointUrl?: string;
  /** Fixed credentials (library use, tests); by default the SDK's provider chain, refreshed as they expire. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Where the AWS SDK's warnings go, each as one record. */
  logger?: Logger;
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim();

/**
 * The AWS SDK's logger: its messages are several lines of prose; ours are one line. The one warning it gives
 * (a profile and static keys both in the environment) is said in our words, once.
 */
function sdkLogger(logger: Logger) {
  return {
    trace: (...args: unknown[]) => logger.debug({ event: 'aws-sdk' }, oneLine(args.map(String).join(' '))),
    debug: (...args: unknown[]) => logger.debug({ event: 'aws-sdk' }, oneLine(args.map(String).join(' '))),
    info: (...args: unknown[]) => logger.debug({ event: 'aws-sdk' }, oneLine(args.map(String).join(' '))),
    warn: (...args: unknown[]) => {
      const text = oneLine(args.map(String).join(' '));
      if (/Multiple credential sources/i.test(text)) {
        logger.warn({ event: 'aws-credential-sources' }, 'both a profile (AWS_PROFILE or --profile) and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set; using the profile');
      } else {
        logger.warn({ event: 'aws-sdk' }, text);
      }
    },
    error: (...args: unknown[]) => logger.error({ event: 'aws-sdk' }, oneLine(args.map(String).join(' '))),
  };
}

export interface StartSessionInput {
  target: string;
  documentName?: string;
  parameters?: Record<string, string[]>;
  reason?: string;
}

export interface SessionCredentials {
  sessionId: string;
  tokenValue: string;
  streamUrl: string;
}

/** Per-call options. */
export interface ApiCallOptions {
  /**
   * Abandon the call when this fires: the request and its connection are torn down, and the call rejects
   * with the signal's reason when that is a BridgeError. The resume loop bounds each ResumeSession with it
   * (a keep-alive connection that died with the network otherwise hangs the call for good).
   */
  signal?: AbortSignal;
}

/** AWS credentials as the SDK resolves them. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * What the data channel's WebSocket upgrade is signed with (SigV4, service `ssmmessages`): the session's
 * credentials and region, each resolved again at every connect and every resume, so refreshed credentials
 * are used as soon as the SDK has them.
 */
export interface UpgradeSigning {
  credentials(): Promise<AwsCredentials>;
  region(): Promise<string>;
}

/** The three SSM calls a session needs; one implementation, over @aws-sdk/client-ssm. */
export interface SsmApi {
  /** The endpoint in use when one was configured (--endpoint-url, AWS_ENDPOINT_URL_SSM, the profile): StreamUrls are checked against it. */
  readonly endpointUrl?: string;
  /**
   * Sign the data-channel upgrade with these, as the official plugin does since 1.2.688.0. Absent: the
   * upgrade goes unsigned, as older plugins send it (the service still accepts that).
   */
  readonly upgradeSigning?: UpgradeSigning;
  startSession(input: StartSessionInput, options?: ApiCallOptions): Promise<SessionCredentials>;
  /** Resolves undefined when the service gives no token: the session is over (SPEC §1). */
  resumeSession(sessionId: string, options?: ApiCallOptions): Promise<SessionCredentials | undefined>;
  terminateSession(sessionId: string, options?: ApiCallOptions): Promise<void>;
  destroy(): void;
}

/** The signal's reason when it fired with a BridgeError (a deadline), else the mapped SDK error. */
function abortedOr(options: ApiCallOptions | undefined, map: () => BridgeError): BridgeError {
  const reason: unknown = options?.signal?.aborted ? options.signal.reason : undefined;
  return reason instanceof BridgeError ? reason : map();
}

/** Retryable errors are worth another ResumeSession call; the rest end the session. */
export function isRetryable(err: unknown): boolean {
  return err instanceof BridgeError && (err.code === ErrorCode.SERVICE_ERROR || err.code === ErrorCode.TIMEOUT);
}

interface AwsLikeError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'ExpiredTokenException',
  'ExpiredToken',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'InvalidClientTokenId',
  'MissingAuthenticationTokenException',
  'TokenRefreshRequired',
  'SSOTokenProviderFailure',
]);

/** Map an AWS SDK or network error to a BridgeError, once, here (STYLE: errors). */
export function mapAwsError(err: unknown, context: { action: string; target?: string; sessionId?: string; documentName?: string; endpointUrl?: string }): BridgeError {
  if (err instanceof BridgeError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? '';
  const message = e.message ?? String(err);
  const status = e.$metadata?.httpStatusCode;
  switch (name) {
    case 'TargetNotConnected':
    case 'InvalidTarget': {
      const target = context.target ?? '';
      // A Name tag (or a host name) is a common first try; StartSession takes ids only.
      const notAnId = target !== '' && !/^(i|mi)-[0-9a-f]+$/.test(target) && !target.includes(':');
      const hint = notAnId
        ? `; "${target}" is not an instance id: targets are ids (i-…, mi-…), not Name tags (find the id with: aws ec2 describe-instances --filters Name=tag:Name,Values=${target} --query 'Reservations[].Instances[].InstanceId')`
        : '; check the instance id, region and that its SSM agent is online';
      return new BridgeError(ErrorCode.TARGET_NOT_CONNECTED, `target ${target} is not connected or does not exist (${message})${hint}`, { cause: err });
    }
    case 'InvalidDocument':
      return new BridgeError(ErrorCode.INVALID_DOCUMENT, `document ${context.documentName ?? ''} was rejected: ${message}`, { cause: err });
    // What the service answers for a parameter the document does not define or a value off its pattern.
    case 'InvalidParameters':
      return new BridgeError(ErrorCode.INVALID_DOCUMENT, `the parameters were rejected by document ${context.documentName ?? ''}: ${message}; check --parameters, --remote-port and --remote-host`, { cause: err });
    case 'ValidationException':
      return new BridgeError(ErrorCode.INVALID_ARGUMENT, `${context.action} rejected the request: ${message}`, { cause: err });
    case 'AccessDeniedException':
      return new BridgeError(ErrorCode.ACCESS_DENIED, `access denied for ${context.action}: ${message}; check the IAM permissions of your credentials`, { cause: err });
    case 'DoesNotExistException':
      return new BridgeError(ErrorCode.SESSION_TERMINATED, `session ${context.sessionId ?? ''} no longer exists: ${message}`, { cause: err });
    default:
      break;
  }
  // Signed for another region or service than the endpoint serves: a setting to fix, not a login to renew.
  if (name === 'InvalidSignatureException' && /scoped to (a valid region|correct service)/i.test(message)) {
    return new BridgeError(ErrorCode.INVALID_ARGUMENT, `${context.action} was signed for a region the endpoint does not serve (${message.trim()}); check --region, AWS_REGION or the profile's region`, { cause: err });
  }
  if (CREDENTIAL_ERRORS.has(name) || /credential|security token|expired/i.test(name)) {
    return new BridgeError(ErrorCode.CREDENTIALS, `AWS credentials were missing, expired or rejected (${message}); log in again (e.g. aws sso login) or pass --profile`, { cause: err });
  }
  if (/region is missing/i.test(message)) {
    return new BridgeError(ErrorCode.INVALID_ARGUMENT, 'no AWS region configured; pass --region, set AWS_REGION or give the profile a region', { cause: err });
  }
  const networkCode = (err as { code?: unknown } | undefined)?.code;
  if (networkCode === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(message)) {
    const hint = context.endpointUrl
      ? `nothing listens at ${context.endpointUrl}: is the endpoint right, or, for the sandbox, is \`ssm-bridge sandbox\` running there?`
      : 'is --endpoint-url missing (e.g. the sandbox\'s), or the sandbox stopped?';
    return new BridgeError(ErrorCode.SERVICE_ERROR, `${context.action} failed: ${message}; ${hint}`, { cause: err });
  }
  if (networkCode === 'ENOTFOUND' || networkCode === 'EAI_AGAIN' || /\b(ENOTFOUND|EAI_AGAIN)\b/.test(message)) {
    const hint = context.endpointUrl
      ? `check the host name in ${context.endpointUrl}`
      : 'check --region (and the network), or pass --endpoint-url to use the sandbox';
    return new BridgeError(ErrorCode.SERVICE_ERROR, `${context.action} failed: ${message} (DNS); ${hint}`, { cause: err });
  }
  // Throttling, 5xx and network failures: worth retrying.
  return new BridgeError(ErrorCode.SERVICE_ERROR, `${context.action} failed: ${name ? `${name}: ` : ''}${message}${status ? ` (HTTP ${status})` : ''}`, { cause: err });
}

let awsSdk: Promise<typeof import('./aws-sdk.js')> | undefined;

/**
 * Start loading the AWS SDK, once, without waiting for it: the CLI calls this as it starts, for the commands
 * that will open sessions, so that the load overlaps the argument parsing. createSsmApi awaits the same load.
 */
export function preloadAwsSdk(): Promise<typeof import('./aws-sdk.js')> {
  if (!awsSdk) {
    awsSdk = import('./aws-sdk.js');
    awsSdk.catch(() => {}); // reported by createSsmApi
  }
  return awsSdk;
}

/**
 * Build the SSM API over @aws-sdk/client-ssm. The SDK is imported lazily: it is most of our start-up time,
 * and `ssm-bridge --help` or the sandbox never need it.
 */
export async function createSsmApi(options: AwsOptions = {}): Promise<SsmApi> {
  const { region, endpointUrl } = resolveAwsConfig(options);
  const { SSMClient, StartSessionCommand, ResumeSessionCommand, TerminateSessionCommand, fromNodeProviderChain } = await preloadAwsSdk();
  const logger = sdkLogger(options.logger ?? silentLogger);
  const client = new SSMClient({
    ...(region ? { region } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
    ...(endpointUrl ? { endpoint: endpointUrl } : {}),
    // Re-resolved on expiry by the SDK: each ResumeSession call signs with fresh credentials.
    credentials: options.credentials ?? fromNodeProviderChain({ ...(options.profile ? { profile: options.profile } : {}), logger }),
    maxAttempts: 2,
  });
  return {
    ...(endpointUrl ? { endpointUrl } : {}),
    // The client's own providers: the same credential chain and cache that sign the API calls.
    upgradeSigning: {
      credentials: () => client.config.credentials(),
      region: () => client.config.region(),
    },
    async startSession(input, options) {
      try {
        const out = await client.send(
          new StartSessionCommand({
            Target: input.target,
            ...(input.documentName ? { DocumentName: input.documentName } : {}),
            ...(input.parameters ? { Parameters: input.parameters } : {}),
            ...(input.reason ? { Reason: input.reason } : {}),
          }),
          options?.signal ? { abortSignal: options.signal } : {},
        );
        if (!out.SessionId || !out.TokenValue || !out.StreamUrl) {
          throw new BridgeError(ErrorCode.SERVICE_ERROR, 'StartSession returned no session id, token or stream URL');
        }
        return { sessionId: out.SessionId, tokenValue: out.TokenValue, streamUrl: out.StreamUrl };
      } catch (err) {
        throw abortedOr(options, () => mapAwsError(err, { action: 'StartSession', target: input.target, ...(input.documentName ? { documentName: input.documentName } : {}), ...(endpointUrl ? { endpointUrl } : {}) }));
      }
    },
    async resumeSession(sessionId, options) {
      try {
        const out = await client.send(new ResumeSessionCommand({ SessionId: sessionId }), options?.signal ? { abortSignal: options.signal } : {});
        if (!out.TokenValue || !out.StreamUrl) return undefined;
        return { sessionId: out.SessionId ?? sessionId, tokenValue: out.TokenValue, streamUrl: out.StreamUrl };
      } catch (err) {
        throw abortedOr(options, () => mapAwsError(err, { action: 'ResumeSession', sessionId, ...(endpointUrl ? { endpointUrl } : {}) }));
      }
    },
    async terminateSession(sessionId, options) {
      try {
        await client.send(new TerminateSessionCommand({ SessionId: sessionId }), options?.signal ? { abortSignal: options.signal } : {});
      } catch (err) {
        throw abortedOr(options, () => mapAwsError(err, { action: 'TerminateSession', sessionId, ...(endpointUrl ? { endpointUrl } : {}) }));
      }
    },
    destroy() {
      client.destroy();
    },
  };
}

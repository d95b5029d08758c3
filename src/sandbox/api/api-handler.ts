import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger } from '../../logger.js';
import type { SandboxConfig } from '../config.js';
import { acceptedCredentials } from '../credentials.js';
import type { FaultState } from '../faults/fault-state.js';
import type { SessionRegistry } from '../registry.js';
import { AWS_JSON_1_1, parseJsonBody, readRequestBody, sendAwsError, sendJson } from './http.js';
import { resolveSessionProperties } from './port-documents.js';
import { parseSessionIdRequest, parseStartSessionRequest } from './requests.js';
import { parseAuthorizationHeader, verifySigV4 } from './sigv4-verifier.js';
import { SsmApiError, sessionDoesNotExist, startSessionFailure, targetNotConnected } from './ssm-api-error.js';

/** The X-Amz-Target prefix of SSM actions. */
const TARGET_PREFIX = 'AmazonSSM.';
/** The reason TerminateSession gives a session (sent to the client in channel_closed by the gateway). */
export const TERMINATE_SESSION_REASON = 'TerminateSession API';

/** A Host header we are willing to copy into a URL: a name or IPv4 address, or a bracketed IPv6 one, and a port. */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * Where the client opens the data channel: `ws://<Host>/v1/data-channel/<id>?role=publish_subscribe`.
 * The service answers `wss://ssmmessages.<region>.amazonaws.com/…`; the sandbox serves plain ws on the
 * host:port the API request reached (the Host header, else the socket's local address).
 */
export function streamUrlFor(req: IncomingMessage, sessionId: string): string {
  const header = req.headers.host;
  let host: string;
  if (header !== undefined && SAFE_HOST.test(header)) host = header;
  else {
    const address = req.socket.localAddress ?? '127.0.0.1';
    host = `${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort ?? 80}`;
  }
  return `ws://${host}/v1/data-channel/${encodeURIComponent(sessionId)}?role=publish_subscribe`;
}

/**
 * The SSM API half of the sandbox: AWS JSON 1.1 on `POST /` (SPEC §1) for StartSession, ResumeSession and
 * TerminateSession, with errors shaped as the service sends them so @aws-sdk/client-ssm raises its typed
 * exceptions. Order of checks: route, Authorization's shape, body size, SigV4 signature (service `ssm`,
 * `config.region`), X-Amz-Target, JSON body, then the action's own.
 * Every decision beyond the spec is listed in docs/sandbox.md, "API emulation decisions".
 */
export function createApiHandler(registry: SessionRegistry, faults: FaultState, config: SandboxConfig, logger: Logger = silentLogger): (req: IncomingMessage, res: ServerResponse) => void {
  const credentials = acceptedCredentials(config);
  async function startSession(req: IncomingMessage, body: unknown): Promise<object> {
    const request = parseStartSessionRequest(body);
    registry.countStartSession(request.target);
    const failure = faults.takeStartFailure();
    if (failure !== undefined) throw startSessionFailure(failure, request.target, config.region);
    const properties = resolveSessionProperties(request.documentName, request.parameters, config.documents);
    const target = config.targets[request.target];
    if (target === undefined || !registry.isTargetConnected(request.target)) throw targetNotConnected(request.target);
    const record = registry.start({ targetId: request.target, documentName: request.documentName!, parameters: request.parameters ?? {}, properties });
    logger.info({ sessionId: record.sessionId, target: request.target, documentName: request.documentName, properties }, 'StartSession');
    return { SessionId: record.sessionId, TokenValue: record.token, StreamUrl: streamUrlFor(req, record.sessionId) };
  }

  async function resumeSession(req: IncomingMessage, body: unknown): Promise<object> {
    const sessionId = parseSessionIdRequest(body);
    const existing = registry.get(sessionId);
    if (existing !== undefined) existing.counters.resumeSessionCalls++;
    const failure = faults.takeResumeFailure();
    if (failure === 'ThrottlingException') throw new SsmApiError('ThrottlingException', 400, 'Rate exceeded');
    if (failure === 'InternalServerError') throw new SsmApiError('InternalServerError', 500, 'An internal error occurred (sandbox fault injection).');
    if (existing === undefined) throw sessionDoesNotExist(sessionId);
    if (existing.state === 'terminated') {
      // A terminated or expired session yields no token (SPEC §1, §6): the client must treat it as over.
      logger.info({ sessionId, reason: existing.terminatedReason }, 'ResumeSession: session is over, no token');
      return { SessionId: sessionId };
    }
    const record = registry.resume(sessionId);
    logger.info({ sessionId, state: record.state }, 'ResumeSession');
    return { SessionId: sessionId, TokenValue: record.token, StreamUrl: streamUrlFor(req, sessionId) };
  }

  async function terminateSession(_req: IncomingMessage, body: unknown): Promise<object> {
    const sessionId = parseSessionIdRequest(body);
    const ended = registry.terminate(sessionId, TERMINATE_SESSION_REASON);
    logger.info({ sessionId, ended }, 'TerminateSession');
    return { SessionId: sessionId };
  }

  const actions: Record<string, (req: IncomingMessage, body: unknown) => Promise<object>> = {
    StartSession: startSession,
    ResumeSession: resumeSession,
    TerminateSession: terminateSession,
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || path !== '/') {
      throw new SsmApiError('UnknownOperationException', 404, `${req.method} ${path} is not an SSM API call: send POST / with an X-Amz-Target header.`);
    }
    // The header's shape first, so a request that is not signed at all is told so before its body is read.
    parseAuthorizationHeader(req.headers.authorization);
    const bodyBytes = await readRequestBody(req);
    verifySigV4({ method: req.method, url: req.url ?? '/', rawHeaders: req.rawHeaders, body: bodyBytes }, { service: 'ssm', region: config.region, credentials });
    const amzTarget = req.headers['x-amz-target'];
    const action = typeof amzTarget === 'string' && amzTarget.startsWith(TARGET_PREFIX) ? amzTarget.slice(TARGET_PREFIX.length) : undefined;
    const run = action !== undefined && Object.hasOwn(actions, action) ? actions[action] : undefined;
    if (run === undefined) {
      throw new SsmApiError('UnknownOperationException', 400, `The sandbox does not implement ${amzTarget === undefined ? 'requests without X-Amz-Target' : String(amzTarget)}; it offers AmazonSSM.StartSession, AmazonSSM.ResumeSession and AmazonSSM.TerminateSession.`);
    }
    const body = parseJsonBody(bodyBytes);
    const out = await run(req, body);
    sendJson(res, 200, out, AWS_JSON_1_1);
    logger.debug({ action, status: 200 }, 'SSM API call');
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const apiError = err instanceof SsmApiError ? err : new SsmApiError('InternalServerError', 500, 'An internal error occurred in the sandbox.');
      if (err instanceof SsmApiError) logger.debug({ type: err.type, status: err.status, err: err.message }, 'SSM API error');
      else logger.error({ err: err instanceof Error ? err.stack ?? err.message : String(err) }, 'SSM API: unexpected error');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // The body may be unread (an early rejection): read it away, so the connection can be reused.
      req.resume();
      sendAwsError(res, apiError);
    });
  };
}

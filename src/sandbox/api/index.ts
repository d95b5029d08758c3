import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger } from '../../logger.js';
import type { SandboxConfig } from '../config.js';
import { ApiError, resolveDocument } from '../documents.js';
import type { FaultState } from '../faults/index.js';
import type { SessionRecord, SessionRegistry } from '../registry.js';
import { readJsonBody, sendAwsError, sendJson } from './http.js';

const JSON_11 = 'application/x-amz-json-1.1';
const DOCUMENT_NAME = /^[a-zA-Z0-9_\-.:/]{3,128}$/;
const REASON = /^.{1,256}$/;

function validation(message: string): ApiError {
  return new ApiError('ValidationException', 400, message);
}

function requireString(body: Record<string, unknown>, key: string, min: number, max: number, required: boolean): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (required) throw validation(`1 validation error detected: Value null at '${key.charAt(0).toLowerCase()}${key.slice(1)}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof value !== 'string') throw new ApiError('SerializationException', 400, `${key} must be a string`);
  if (value.length < min || value.length > max) {
    throw validation(`1 validation error detected: Value at '${key.charAt(0).toLowerCase()}${key.slice(1)}' failed to satisfy constraint: Member must have length between ${min} and ${max}`);
  }
  return value;
}

function parseParameters(value: unknown): Record<string, string[]> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ApiError('SerializationException', 400, 'Parameters must be a map of string to list of strings');
  const out: Record<string, string[]> = {};
  for (const [key, list] of Object.entries(value as Record<string, unknown>)) {
    if (key.length < 1 || key.length > 255) throw validation(`1 validation error detected: Parameters key ${JSON.stringify(key.slice(0, 40))} must have length between 1 and 255`);
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw new ApiError('SerializationException', 400, `Parameters.${key} must be a list of strings`);
    for (const v of list as string[]) {
      if (v.length < 1 || v.length > 65535) throw validation(`1 validation error detected: Parameters.${key} values must have length between 1 and 65535`);
    }
    out[key] = list as string[];
  }
  return out;
}

function streamUrl(req: IncomingMessage, sessionId: string): string {
  return `ws://${req.headers.host ?? '127.0.0.1'}/v1/data-channel/${encodeURIComponent(sessionId)}?role=publish_subscribe`;
}

/**
 * The SSM API half of the sandbox: AWS JSON 1.1 over `POST /`, for StartSession, ResumeSession and
 * TerminateSession, with errors shaped as the service sends them so @aws-sdk/client-ssm types them.
 */
export function createApiHandler(registry: SessionRegistry, faults: FaultState, config: SandboxConfig, logger: Logger = silentLogger) {
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new ApiError('UnknownOperationException', 404, `${req.method} ${req.url} is not an SSM API call; POST / with X-Amz-Target`);
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || !auth.startsWith('AWS4-HMAC-SHA256 Credential=')) {
      throw new ApiError('MissingAuthenticationTokenException', 400, 'Missing Authentication Token');
    }
    const target = req.headers['x-amz-target'];
    const body = await readJsonBody(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError('SerializationException', 400, 'request body must be a JSON object');
    const input = body as Record<string, unknown>;
    switch (target) {
      case 'AmazonSSM.StartSession': {
        const targetId = requireString(input, 'Target', 1, 400, true)!;
        const documentName = requireString(input, 'DocumentName', 1, 128, false);
        if (documentName !== undefined && !DOCUMENT_NAME.test(documentName)) {
          throw validation(`1 validation error detected: Value '${documentName}' at 'documentName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.:/]{3,128}$`);
        }
        const reason = requireString(input, 'Reason', 1, 256, false);
        if (reason !== undefined && !REASON.test(reason)) throw validation("1 validation error detected: Value at 'reason' failed to satisfy constraint: Member must satisfy regular expression pattern: ^.{1,256}$");
        const parameters = parseParameters(input.Parameters);
        const targetConfig = config.targets[targetId];
        if (!targetConfig || !targetConfig.connected) throw new ApiError('TargetNotConnected', 400, `${targetId} is not connected.`);
        const properties = resolveDocument(config, documentName, parameters);
        const record = registry.start({ targetId, documentName: documentName!, parameters, properties });
        logger.info({ sessionId: record.sessionId, target: targetId, document: documentName }, 'StartSession');
        sendJson(res, 200, { SessionId: record.sessionId, TokenValue: record.token, StreamUrl: streamUrl(req, record.sessionId) }, JSON_11);
        return;
      }
      case 'AmazonSSM.ResumeSession': {
        const sessionId = requireString(input, 'SessionId', 1, 96, true)!;
        const failure = faults.takeResumeFailure();
        const existing = registry.get(sessionId);
        if (existing) existing.counters.resumeSessionCalls += failure ? 1 : 0;
        if (failure) throw failure;
        const record: SessionRecord | undefined = registry.resume(sessionId);
        if (!record) throw new ApiError('DoesNotExistException', 400, `Session with id ${sessionId} does not exist.`);
        logger.info({ sessionId, state: record.state }, 'ResumeSession');
        // A terminated or expired session yields no token (SPEC §1): the client must treat it as over.
        if (record.state === 'terminated') sendJson(res, 200, { SessionId: sessionId }, JSON_11);
        else sendJson(res, 200, { SessionId: sessionId, TokenValue: record.token, StreamUrl: streamUrl(req, sessionId) }, JSON_11);
        return;
      }
      case 'AmazonSSM.TerminateSession': {
        const sessionId = requireString(input, 'SessionId', 1, 96, true)!;
        registry.terminate(sessionId, 'TerminateSession API');
        logger.info({ sessionId }, 'TerminateSession');
        sendJson(res, 200, { SessionId: sessionId }, JSON_11);
        return;
      }
      default:
        throw new ApiError('UnknownOperationException', 400, `The sandbox does not implement ${String(target)}; it offers StartSession, ResumeSession and TerminateSession.`);
    }
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof ApiError ? err : new ApiError('InternalServerError', 500, `sandbox error: ${String(err)}`);
      if (!(err instanceof ApiError)) logger.error({ err: String(err) }, 'sandbox API error');
      if (!res.headersSent) sendAwsError(res, e);
      else res.end();
    });
  };
}

import { serializationError, validationError } from './ssm-api-error.js';

/** StartSession's request members, after validation (SPEC §1). */
export interface StartSessionRequest {
  target: string;
  documentName?: string;
  parameters?: Record<string, string[]>;
  reason?: string;
}

/** StartSession's DocumentName pattern (API reference); ':' and '/' allow document ARNs. */
export const DOCUMENT_NAME_PATTERN = /^[a-zA-Z0-9_\-.:/]{3,128}$/;
/** StartSession's Reason pattern. Like Java's, `.` does not match line terminators. */
export const REASON_PATTERN = /^.{1,256}$/;

/** Echo a value in a validation message as the service does, but bounded. */
function shown(value: string): string {
  return value.length > 100 ? `${value.slice(0, 100)}...` : value;
}

function lengthProblem(value: string, member: string, min: number, max: number): string | undefined {
  if (value.length < min) return `Value '${shown(value)}' at '${member}' failed to satisfy constraint: Member must have length greater than or equal to ${min}`;
  if (value.length > max) return `Value '${shown(value)}' at '${member}' failed to satisfy constraint: Member must have length less than or equal to ${max}`;
  return undefined;
}

function patternProblem(value: string, member: string, pattern: RegExp): string | undefined {
  return pattern.test(value) ? undefined : `Value '${shown(value)}' at '${member}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${pattern.source}`;
}

/** A JSON member that must be a string when present; a wrong JSON type is a SerializationException. */
function stringMember(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw serializationError(`${key}: expected a string, got ${Array.isArray(value) ? 'an array' : typeof value}.`);
  return value;
}

function requestObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw serializationError('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

/**
 * Validate a StartSession body: Target 1–400, DocumentName pattern, Parameters key 1–255 and value
 * 1–65535, Reason `^.{1,256}$`. Every violated constraint is reported in one ValidationException, as the
 * service does; unknown members are ignored.
 */
export function parseStartSessionRequest(body: unknown): StartSessionRequest {
  const input = requestObject(body);
  const problems: string[] = [];
  const target = stringMember(input, 'Target');
  if (target === undefined) problems.push("Value null at 'target' failed to satisfy constraint: Member must not be null");
  else {
    const p = lengthProblem(target, 'target', 1, 400);
    if (p) problems.push(p);
  }
  const documentName = stringMember(input, 'DocumentName');
  if (documentName !== undefined) {
    const p = patternProblem(documentName, 'documentName', DOCUMENT_NAME_PATTERN);
    if (p) problems.push(p);
  }
  const reason = stringMember(input, 'Reason');
  if (reason !== undefined) {
    const p = lengthProblem(reason, 'reason', 1, 256) ?? patternProblem(reason, 'reason', REASON_PATTERN);
    if (p) problems.push(p);
  }
  let parameters: Record<string, string[]> | undefined;
  const raw = input.Parameters;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw)) throw serializationError('Parameters: expected a map of string to list of strings.');
    parameters = {};
    for (const [key, list] of Object.entries(raw as Record<string, unknown>)) {
      if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw serializationError(`Parameters.${key}: expected a list of strings.`);
      if (key.length < 1 || key.length > 255) {
        problems.push(`Value at 'parameters' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 1] (key '${shown(key)}')`);
      }
      if ((list as string[]).some((v) => v.length < 1 || v.length > 65535)) {
        problems.push(
          `Value at 'parameters' failed to satisfy constraint: Map value must satisfy constraint: [Member must satisfy constraint: [Member must have length less than or equal to 65535, Member must have length greater than or equal to 1]] (key '${shown(key)}')`,
        );
      }
      parameters[key] = list as string[];
    }
  }
  if (problems.length > 0) throw validationError(problems);
  return {
    target: target!,
    ...(documentName !== undefined ? { documentName } : {}),
    ...(parameters !== undefined ? { parameters } : {}),
    ...(reason !== undefined ? { reason } : {}),
  };
}

/** Validate a ResumeSession / TerminateSession body: SessionId, required, 1–96 characters. */
export function parseSessionIdRequest(body: unknown): string {
  const input = requestObject(body);
  const sessionId = stringMember(input, 'SessionId');
  if (sessionId === undefined) throw validationError(["Value null at 'sessionId' failed to satisfy constraint: Member must not be null"]);
  const p = lengthProblem(sessionId, 'sessionId', 1, 96);
  if (p) throw validationError([p]);
  return sessionId;
}

/**
 * An error the sandbox's SSM API answers with, shaped as AWS JSON 1.1 errors are (SPEC §1): HTTP `status`,
 * body `{"__type": type, "message": message}` and the `x-amzn-errortype` header, so @aws-sdk/client-ssm
 * raises its typed exception (`TargetNotConnected`, `InvalidDocument`, …) with `name === type`.
 */
export class SsmApiError extends Error {
  /** The exception name, e.g. `TargetNotConnected`. */
  readonly type: string;
  /** The HTTP status: 400 for client errors, 500 for InternalServerError. */
  readonly status: number;

  constructor(type: string, status: number, message: string) {
    super(message);
    this.name = 'SsmApiError';
    this.type = type;
    this.status = status;
  }
}

/** 400 ValidationException, with the service's "N validation error(s) detected: …" wording. */
export function validationError(problems: readonly string[]): SsmApiError {
  const n = problems.length;
  return new SsmApiError('ValidationException', 400, `${n} validation error${n === 1 ? '' : 's'} detected: ${problems.join('; ')}`);
}

/** 400 SerializationException: the body is not JSON, or a member has the wrong JSON type. */
export function serializationError(message: string): SsmApiError {
  return new SsmApiError('SerializationException', 400, message);
}

/** 400 InvalidDocument: the document does not exist or is not a Port session document. */
export function invalidDocument(message: string): SsmApiError {
  return new SsmApiError('InvalidDocument', 400, message);
}

/** 400 InvalidParameters: what the service answers for unknown, missing or non-matching document parameters. */
export function invalidParameters(message: string): SsmApiError {
  return new SsmApiError('InvalidParameters', 400, message);
}

/** 400 TargetNotConnected, worded as the service words it. */
export function targetNotConnected(targetId: string): SsmApiError {
  return new SsmApiError('TargetNotConnected', 400, `${targetId} is not connected.`);
}

/** 400 DoesNotExistException for an unknown session id. */
export function sessionDoesNotExist(sessionId: string): SsmApiError {
  return new SsmApiError('DoesNotExistException', 400, `Session with id ${sessionId} does not exist.`);
}

/**
 * A fault-injected StartSession failure, shaped as the service sends each: 400 ThrottlingException "Rate
 * exceeded", 400 AccessDeniedException in IAM's wording (the sandbox's fake account 000000000000), 500
 * InternalServerError.
 */
export function startSessionFailure(kind: 'ThrottlingException' | 'AccessDeniedException' | 'InternalServerError', targetId: string, region: string): SsmApiError {
  switch (kind) {
    case 'ThrottlingException':
      return new SsmApiError('ThrottlingException', 400, 'Rate exceeded');
    case 'AccessDeniedException':
      return new SsmApiError(
        'AccessDeniedException',
        400,
        `User: arn:aws:iam::000000000000:user/sandbox is not authorized to perform: ssm:StartSession on resource: arn:aws:ec2:${region}:000000000000:instance/${targetId} because no identity-based policy allows the ssm:StartSession action (sandbox fault injection)`,
      );
    case 'InternalServerError':
      return new SsmApiError('InternalServerError', 500, 'An internal error occurred (sandbox fault injection).');
  }
}

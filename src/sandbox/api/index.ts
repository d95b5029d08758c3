export { createApiHandler, streamUrlFor, TERMINATE_SESSION_REASON } from './api-handler.js';
export { AWS_JSON_1_1, MAX_REQUEST_BODY_BYTES, readJsonBody, sendAwsError, sendJson } from './http.js';
export {
  BUILT_IN_PORT_DOCUMENTS,
  findPortDocument,
  LOCAL_PORT_NUMBER_PATTERN,
  PORT_NUMBER_PATTERN,
  REMOTE_HOST_PATTERN,
  resolveSessionProperties,
} from './port-documents.js';
export { DOCUMENT_NAME_PATTERN, parseSessionIdRequest, parseStartSessionRequest, REASON_PATTERN, type StartSessionRequest } from './requests.js';
export {
  invalidDocument,
  invalidParameters,
  serializationError,
  sessionDoesNotExist,
  SsmApiError,
  targetNotConnected,
  validationError,
} from './ssm-api-error.js';

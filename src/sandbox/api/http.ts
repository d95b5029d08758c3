import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SsmApiError, serializationError } from './ssm-api-error.js';

/** Larger request bodies are refused with 413; StartSession's largest legal body is far below. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

export const AWS_JSON_1_1 = 'application/x-amz-json-1.1';

/**
 * Read a request body as JSON. Empty means `{}`. Throws SsmApiError: 400 SerializationException for
 * bytes that are not JSON, 413 RequestEntityTooLargeException past {@link MAX_REQUEST_BODY_BYTES}.
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return parseJsonBody(await readRequestBody(req));
}

/** The body's bytes; 413 RequestEntityTooLargeException past {@link MAX_REQUEST_BODY_BYTES}. */
export async function readRequestBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BODY_BYTES) {
      throw new SsmApiError('RequestEntityTooLargeException', 413, `Request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Body bytes as JSON; empty means `{}`; 400 SerializationException when they are not JSON. */
export function parseJsonBody(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw serializationError(`The request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A JSON response with an `x-amzn-RequestId`, as every AWS response carries. */
export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json', headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(text)),
    'x-amzn-RequestId': randomUUID(),
    ...headers,
  });
  res.end(text);
}

/**
 * An AWS JSON 1.1 error: the status, body `{"__type", "message"}` and the `x-amzn-ErrorType` header, both
 * of which @aws-sdk/client-ssm reads to pick its exception class.
 */
export function sendAwsError(res: ServerResponse, err: SsmApiError): void {
  sendJson(res, err.status, { __type: err.type, message: err.message }, AWS_JSON_1_1, { 'x-amzn-ErrorType': err.type });
}

import { PLACEHOLDER_PATTERN, type DocumentConfig, type SessionTypeProperties } from '../config.js';
import { invalidDocument, invalidParameters } from './ssm-api-error.js';

export type { SessionTypeProperties };

/** The allowedPattern of `portNumber` in the AWS port documents: 1–65535. */
export const PORT_NUMBER_PATTERN = '^([1-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';
/** The allowedPattern of `localPortNumber`: 0–65535 (0: the client picks a free port). */
export const LOCAL_PORT_NUMBER_PATTERN = '^([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$';
/** The allowedPattern of `host` in AWS-StartPortForwardingSessionToRemoteHost, as the service reports it. */
export const REMOTE_HOST_PATTERN = '^[^,$^&\\(\\)!;\'"<>\\`{}\\[\\]\\|#=]{3,}$';

/** The built-in Port documents (SPEC §1 table), with the parameters and defaults of the AWS-owned ones. */
export const BUILT_IN_PORT_DOCUMENTS: Readonly<Record<string, DocumentConfig>> = Object.freeze({
  'AWS-StartSSHSession': {
    parameters: { portNumber: { type: 'String', default: '22', allowedPattern: PORT_NUMBER_PATTERN } },
    properties: { portNumber: '{{ portNumber }}' },
  },
  'AWS-StartPortForwardingSession': {
    parameters: {
      portNumber: { type: 'String', default: '80', allowedPattern: PORT_NUMBER_PATTERN },
      localPortNumber: { type: 'String', default: '0', allowedPattern: LOCAL_PORT_NUMBER_PATTERN },
    },
    properties: { portNumber: '{{ portNumber }}', type: 'LocalPortForwarding', localPortNumber: '{{ localPortNumber }}' },
  },
  'AWS-StartPortForwardingSessionToRemoteHost': {
    parameters: {
      host: { type: 'String', allowedPattern: REMOTE_HOST_PATTERN },
      portNumber: { type: 'String', default: '80', allowedPattern: PORT_NUMBER_PATTERN },
      localPortNumber: { type: 'String', default: '0', allowedPattern: LOCAL_PORT_NUMBER_PATTERN },
    },
    properties: { host: '{{ host }}', portNumber: '{{ portNumber }}', type: 'LocalPortForwarding', localPortNumber: '{{ localPortNumber }}' },
  },
} satisfies Record<string, DocumentConfig>);

/** Session documents of the real service that start shells or commands: they exist, but are not emulated. */
const NON_PORT_SESSION_DOCUMENTS = new Set(['SSM-SessionManagerRunShell', 'AWS-StartInteractiveCommand', 'AWS-StartNonInteractiveCommand', 'AWS-PasswordReset']);

/** A document given by ARN (shared documents): `arn:aws:ssm:<region>:<account>:document/<name>`. */
const DOCUMENT_ARN = /^arn:[^:]+:ssm:[^:]*:[^:]*:document\/(.+)$/;

const compiled = new Map<string, RegExp>();
function pattern(source: string): RegExp {
  let re = compiled.get(source);
  if (re === undefined) {
    re = new RegExp(source);
    compiled.set(source, re);
  }
  return re;
}

/** Custom documents (config) first, then the built-in ones; undefined when neither has the name. */
export function findPortDocument(documentName: string, customDocuments: Readonly<Record<string, DocumentConfig>> = {}): DocumentConfig | undefined {
  const name = DOCUMENT_ARN.exec(documentName)?.[1] ?? documentName;
  return Object.hasOwn(customDocuments, name) ? customDocuments[name] : Object.hasOwn(BUILT_IN_PORT_DOCUMENTS, name) ? BUILT_IN_PORT_DOCUMENTS[name] : undefined;
}

/**
 * Resolve a StartSession's document and Parameters into the session type properties the agent will
 * announce. Throws {@link SsmApiError}:
 * - `InvalidDocument` (400): no DocumentName (an interactive shell, not emulated), a shell or command
 *   document, or a document that does not exist;
 * - `InvalidParameters` (400): a parameter the document does not define, other than exactly one value, a
 *   value not matching the parameter's allowedPattern, or a required parameter (no default) left out.
 *
 * Parameter lengths (key 1–255, value 1–65535) are the API's ValidationException, checked before this.
 */
export function resolveSessionProperties(
  documentName: string | undefined,
  parameters: Readonly<Record<string, readonly string[]>> | undefined,
  customDocuments: Readonly<Record<string, DocumentConfig>> = {},
): SessionTypeProperties {
  if (documentName === undefined) {
    throw invalidDocument(
      'The sandbox emulates Port sessions only: StartSession without a DocumentName starts an interactive shell (Standard_Stream), which it does not emulate. Pass a Port document such as AWS-StartPortForwardingSession or AWS-StartSSHSession.',
    );
  }
  const name = DOCUMENT_ARN.exec(documentName)?.[1] ?? documentName;
  const document = findPortDocument(name, customDocuments);
  if (document === undefined) {
    if (NON_PORT_SESSION_DOCUMENTS.has(name)) {
      throw invalidDocument(`Document ${name} starts a shell or command session; the sandbox emulates Port sessions only (AWS-StartSSHSession, AWS-StartPortForwardingSession, AWS-StartPortForwardingSessionToRemoteHost, or a custom Port document).`);
    }
    const known = [...Object.keys(BUILT_IN_PORT_DOCUMENTS), ...Object.keys(customDocuments)].join(', ');
    throw invalidDocument(`Document ${name} does not exist. The sandbox knows these Port documents: ${known}.`);
  }
  const values: Record<string, string> = {};
  const given = parameters ?? {};
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(document.parameters, key)) {
      const accepted = Object.keys(document.parameters);
      throw invalidParameters(`Parameter "${key}" is not defined in document ${name}; it accepts ${accepted.length ? accepted.join(', ') : 'no parameters'}.`);
    }
  }
  for (const [key, definition] of Object.entries(document.parameters)) {
    const list = Object.hasOwn(given, key) ? given[key] : undefined;
    if (list === undefined) {
      if (definition.default === undefined) throw invalidParameters(`Parameter "${key}" is required by document ${name} but was not provided.`);
      values[key] = definition.default;
      continue;
    }
    if (list.length !== 1) throw invalidParameters(`Parameter "${key}" of document ${name} is of type String and takes exactly one value, got ${list.length}.`);
    const value = list[0]!;
    if (definition.allowedPattern !== undefined && !pattern(definition.allowedPattern).test(value)) {
      throw invalidParameters(`Parameter "${key}" has value "${value}" not matching "${definition.allowedPattern}".`);
    }
    values[key] = value;
  }
  const properties: Record<string, string> = {};
  for (const [key, template] of Object.entries(document.properties) as Array<[string, string | undefined]>) {
    if (template === undefined) continue;
    properties[key] = template.replace(PLACEHOLDER_PATTERN, (_m, p: string) => values[p] ?? '');
  }
  return properties as unknown as SessionTypeProperties;
}

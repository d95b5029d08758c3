import { ReliableChannel } from '../channel/index.js';
import { BridgeError, ErrorCode, ProtocolError } from '../errors.js';
import {
  ActionStatus,
  ActionType,
  CLIENT_VERSION,
  decodeHandshakeComplete,
  decodeHandshakeRequest,
  decodeSessionTypeRequest,
  encodeHandshakeResponse,
  PayloadType,
  type AgentMessage,
  type PortSessionProperties,
  type ProcessedClientAction,
} from '../protocol/index.js';

/** What the agent told us in the handshake (SPEC §4). */
export interface HandshakeResult {
  agentVersion: string;
  sessionType: string;
  properties: PortSessionProperties;
  customerMessage: string;
}

/**
 * The client side of the handshake: HandshakeRequest → HandshakeResponse → HandshakeComplete.
 * Call before attaching the first transport, so the request cannot be missed.
 */
export function performClientHandshake(channel: ReliableChannel, options: { timeoutMs: number; clientVersion?: string }): Promise<HandshakeResult> {
  return new Promise<HandshakeResult>((resolve, reject) => {
    let agentVersion = '';
    let sessionType = '';
    let properties: PortSessionProperties = {};
    const timer = setTimeout(
      () => finish(new BridgeError(ErrorCode.HANDSHAKE_FAILED, `the agent did not complete the handshake within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    timer.unref();

    const finish = (err?: BridgeError, result?: HandshakeResult): void => {
      clearTimeout(timer);
      channel.off('stream-message', onMessage);
      channel.off('close', onClose);
      if (err) reject(err);
      else resolve(result!);
    };
    const onClose = (err?: BridgeError): void =>
      finish(err ?? new BridgeError(ErrorCode.HANDSHAKE_FAILED, 'the data channel closed during the handshake'));

    const onMessage = (msg: AgentMessage): void => {
      try {
        if (msg.payloadType === PayloadType.HandshakeRequest) {
          const request = decodeHandshakeRequest(msg.payload);
          agentVersion = request.AgentVersion;
          const processed: ProcessedClientAction[] = request.RequestedClientActions.map((action) => {
            switch (action.ActionType) {
              case ActionType.SessionType: {
                const st = decodeSessionTypeRequest(action.ActionParameters);
                sessionType = st.SessionType;
                properties = st.Properties;
                const ok = st.SessionType === 'Port';
                return {
                  ActionType: action.ActionType,
                  ActionStatus: ok ? ActionStatus.Success : ActionStatus.Failed,
                  ActionResult: null,
                  Error: ok ? '' : `ssm-bridge supports Port sessions only, not ${st.SessionType}`,
                };
              }
              case ActionType.KMSEncryption:
                return {
                  ActionType: action.ActionType,
                  ActionStatus: ActionStatus.Failed,
                  ActionResult: null,
                  Error: 'ssm-bridge does not support KMS-encrypted sessions yet',
                };
              default:
                return { ActionType: action.ActionType, ActionStatus: ActionStatus.Unsupported, ActionResult: null, Error: `unsupported action ${action.ActionType}` };
            }
          });
          channel.sendStreamMessage(
            PayloadType.HandshakeResponse,
            encodeHandshakeResponse({ ClientVersion: options.clientVersion ?? CLIENT_VERSION, ProcessedClientActions: processed, Errors: [] }),
          );
          const failed = processed.find((p) => p.ActionStatus !== ActionStatus.Success);
          if (failed) finish(new BridgeError(ErrorCode.HANDSHAKE_FAILED, `handshake failed: ${failed.Error}`));
        } else if (msg.payloadType === PayloadType.HandshakeComplete) {
          const complete = decodeHandshakeComplete(msg.payload);
          finish(undefined, { agentVersion, sessionType, properties, customerMessage: complete.CustomerMessage });
        }
      } catch (err) {
        if (err instanceof ProtocolError) finish(new BridgeError(ErrorCode.HANDSHAKE_FAILED, `malformed handshake from the agent: ${err.message}`, { cause: err }));
        else throw err;
      }
    };
    channel.on('stream-message', onMessage);
    channel.on('close', onClose);
  });
}

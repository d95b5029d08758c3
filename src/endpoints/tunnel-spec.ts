import { BridgeError, ErrorCode } from '../errors.js';
import type { StartSessionInput } from '../session/index.js';
import type { LocalEndpoint } from './local-listener.js';

/** Where a tunnel's connections go: a port on the node, a host beyond it, or any Port document. */
export interface TunnelDestination {
  target: string;
  /** Port on the node, or on `remoteHost` beyond it. Ignored when `documentName` is given. */
  remotePort?: number;
  remoteHost?: string;
  /** Any Port document; its `parameters` are passed as they are. */
  documentName?: string;
  parameters?: Record<string, string[]>;
  reason?: string;
}

/**
 * One tunnel, as `forward` builds it from its options and `up` from a tunnels file, and as the endpoints take
 * it: the one declaration, passed whole from cli/ to endpoints/.
 */
export interface TunnelSpec extends TunnelDestination {
  name: string;
  local: LocalEndpoint;
  /** Start a new session behind the same listener when one ends in a replaceable way (default true in the CLI). */
  reconnect?: boolean;
  /** How many sessions carry the tunnel's connections at once (striping; default 1). */
  sessions?: number;
}

/** Where the agent connects, in words: "db.internal:5432", "port 5432 on i-…", or the document's. */
export function describeDestination(destination: TunnelDestination): string {
  if (destination.documentName) return `the destination of ${destination.documentName} on ${destination.target}`;
  if (destination.remoteHost) return `${destination.remoteHost}:${destination.remotePort ?? '?'} (through ${destination.target})`;
  return `port ${destination.remotePort ?? '?'} on ${destination.target}`;
}

/** The remote end as the listening line shows it: `host:port`, or the target and its document. */
export function describeRemote(destination: TunnelDestination): string {
  return destination.documentName ? `${destination.target} (${destination.documentName})` : `${destination.remoteHost ?? destination.target}:${destination.remotePort}`;
}

/** The StartSession input for a forward (SPEC §1 port documents); every replacement session uses the same. */
export function forwardStartInput(destination: TunnelDestination, localPort: number): StartSessionInput {
  if (destination.documentName) {
    return {
      target: destination.target,
      documentName: destination.documentName,
      ...(destination.parameters ? { parameters: destination.parameters } : {}),
      ...(destination.reason ? { reason: destination.reason } : {}),
    };
  }
  if (destination.remotePort === undefined) throw new BridgeError(ErrorCode.INVALID_ARGUMENT, 'a remote port is required (--remote-port)');
  const parameters: Record<string, string[]> = { portNumber: [String(destination.remotePort)], localPortNumber: [String(localPort)] };
  if (destination.remoteHost) parameters.host = [destination.remoteHost];
  return {
    target: destination.target,
    documentName: destination.remoteHost ? 'AWS-StartPortForwardingSessionToRemoteHost' : 'AWS-StartPortForwardingSession',
    parameters,
    ...(destination.reason ? { reason: destination.reason } : {}),
  };
}

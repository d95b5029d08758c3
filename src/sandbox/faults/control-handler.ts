/**
 * The sandbox control API, on the sandbox's own HTTP port (loopback), under `/_sandbox/`. JSON in and out;
 * errors are `{"error": "<Code>", "message": "…"}` with a 4xx status.
 *
 * | route | does |
 * |---|---|
 * | `GET /_sandbox/sessions` | every session (terminated ones too): state, timestamps, properties, counters; never the token |
 * | `GET /_sandbox/sessions/<id>` | one session; 404 when unknown |
 * | `POST /_sandbox/sessions/<id>/drop` | 202: asks the gateway (event `dropRequested` on FaultState) to cut the session's WebSocket; the session survives for a resume. 409 when terminated |
 * | `POST /_sandbox/sessions/<id>/expire` | ends it as an expiry does (reason `expired`): ResumeSession then gives no token |
 * | `POST /_sandbox/sessions/<id>/terminate` | ends it as TerminateSession does |
 * | `POST /_sandbox/sessions/<id>/block-destination` `{"ms": T}` | 202: the agent's destinations take no bytes for T ms (its reader blocks behind them) |
 * | `POST /_sandbox/sessions/<id>/withhold-acks` `{"ms": T}` | 202: the gateway holds the agent's acks to the client for T ms, then delivers them |
 * | `POST /_sandbox/sessions/<id>/agent-heartbeat-timeout` | 202: the agent's read deadline passes now: it reconnects (the client sees pause/start_publication) |
 * | `POST /_sandbox/sessions/<id>/pause-client` | 202: the gateway sends the client pause_publication and no start_publication |
 * | `POST /_sandbox/sessions/<id>/agent-end` | 202: the agent ends the session as when its plugin exits: PrepareToCloseChannel (≤ 2 s for acks), then channel_closed with an empty Output (reason `the agent ended the session`). 409 when terminated or no data channel has connected yet |
 * | `GET /_sandbox/targets`, `GET /_sandbox/targets/<id>` | each target: `connected`, `agentVersion`, `startSessionCalls` (well-formed StartSession calls naming it, failed ones too), live `sessions`; 404 when unknown |
 * | `POST /_sandbox/targets/<id>/disconnect`, `…/connect` | 202: its agent goes offline (StartSession answers TargetNotConnected; live sessions go on) or back online; 404 when unknown |
 * | `GET /_sandbox/faults` | the fault settings, plus the PRNG `seed` |
 * | `POST /_sandbox/faults` | merge a JSON object into the settings (all or nothing; 400 naming a bad field) |
 * | `DELETE /_sandbox/faults` | every fault off |
 *
 * expire and terminate are idempotent: on a session already over they change nothing and answer 200.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isBridgeError } from '../../errors.js';
import { silentLogger, type Logger } from '../../logger.js';
import { readJsonBody, sendJson } from '../api/http.js';
import { SsmApiError } from '../api/ssm-api-error.js';
import { describeSession, type SessionCounters, type SessionRegistry, type SessionSummary } from '../registry.js';
import type { FaultState } from './fault-state.js';

/** The reason a session terminated through the control API carries. */
export const CONTROL_TERMINATE_REASON = 'terminated through the sandbox control API';

export interface ControlHandlerOptions {
  /** Live counters kept elsewhere (the gateway), merged over the record's own counters. */
  traffic?: (sessionId: string) => Partial<SessionCounters> | undefined;
  logger?: Logger;
}

class ControlError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function methodNotAllowed(method: string | undefined, path: string, allowed: string[]): ControlError {
  return new ControlError(405, 'MethodNotAllowed', `${method} ${path} is not supported; use ${allowed.join(' or ')}`, { Allow: allowed.join(', ') });
}

const LOOPBACK_NAME = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|::1)$/i;

function hostnameOf(hostHeader: string): string {
  const bracketed = /^\[[^\]]*\]/.exec(hostHeader);
  if (bracketed) return bracketed[0];
  return hostHeader.replace(/:\d*$/, '');
}

/**
 * The control API has no authentication (it is a local test tool): it answers only requests whose Host names
 * the machine itself (a DNS-rebinding page sends its own host name) and that carry no foreign Origin (a
 * cross-site "simple" POST from a browser tab sends one). Host is also accepted when it names the address the
 * request came in on (a sandbox bound elsewhere with --host).
 */
function checkCaller(req: IncomingMessage): void {
  const host = hostnameOf(String(req.headers.host ?? ''));
  const local = req.socket.localAddress ?? '';
  const sameAddress = host !== '' && (host === local || host === `[${local}]` || (local.startsWith('::ffff:') && host === local.slice(7)));
  if (!LOOPBACK_NAME.test(host) && !sameAddress) {
    throw new ControlError(403, 'Forbidden', 'the sandbox control API answers only requests addressed to this machine (Host: 127.0.0.1, localhost or [::1])');
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost = '';
    try {
      originHost = new URL(origin).hostname;
    } catch {
      // "null" (a sandboxed frame, a file: page) and the like are foreign
    }
    if (!LOOPBACK_NAME.test(originHost)) throw new ControlError(403, 'Forbidden', 'cross-origin requests to the sandbox control API are refused');
  }
}

/** The handler for requests whose path starts with `/_sandbox/`. */
export function createControlHandler(registry: SessionRegistry, faults: FaultState, options: ControlHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const logger = options.logger ?? silentLogger;

  const summary = (sessionId: string): SessionSummary => {
    const record = registry.get(sessionId);
    if (record === undefined) throw new ControlError(404, 'SessionNotFound', `no session ${sessionId}`);
    const s = describeSession(record);
    const live = options.traffic?.(sessionId);
    // The registry and API own these four; the gateway's copy of the rest is fresher.
    if (live) {
      const { resumeSessionCalls, signedUpgrades, connections, reconnects } = s.counters;
      s.counters = { ...s.counters, ...live, resumeSessionCalls, signedUpgrades, connections, reconnects };
    }
    return s;
  };

  const targetView = (targetId: string) => ({
    target: targetId,
    connected: registry.isTargetConnected(targetId),
    agentVersion: registry.targets()[targetId]!.agentVersion,
    startSessionCalls: registry.startSessionCalls(targetId),
    sessions: registry.list().filter((r) => r.targetId === targetId && r.state !== 'terminated').length,
  });

  const faultsView = () => ({ ...faults.settings, seed: faults.seed });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    checkCaller(req);
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    const parts = path.split('/').filter(Boolean);
    if (parts[0] !== '_sandbox') throw new ControlError(404, 'NotFound', `no control route ${path}`);
    const [, resource, rawId, action] = parts;

    if (resource === 'faults' && parts.length === 2) {
      if (req.method === 'GET') return sendJson(res, 200, faultsView());
      if (req.method === 'POST') {
        faults.update(await readJsonBody(req));
        logger.info({ faults: faultsView() }, 'sandbox faults changed');
        return sendJson(res, 200, faultsView());
      }
      if (req.method === 'DELETE') {
        faults.reset();
        return sendJson(res, 200, faultsView());
      }
      throw methodNotAllowed(req.method, path, ['GET', 'POST', 'DELETE']);
    }

    if (resource === 'targets') {
      if (parts.length === 2) {
        if (req.method !== 'GET') throw methodNotAllowed(req.method, path, ['GET']);
        return sendJson(res, 200, Object.keys(registry.targets()).map((id) => targetView(id)));
      }
      const targetId = decodeURIComponent(rawId!);
      if (registry.targets()[targetId] === undefined) throw new ControlError(404, 'TargetNotFound', `no target ${targetId} in the sandbox config`);
      if (parts.length === 3) {
        if (req.method !== 'GET') throw methodNotAllowed(req.method, path, ['GET']);
        return sendJson(res, 200, targetView(targetId));
      }
      if (parts.length === 4 && (action === 'disconnect' || action === 'connect')) {
        if (req.method !== 'POST') throw methodNotAllowed(req.method, path, ['POST']);
        registry.setTargetConnected(targetId, action === 'connect');
        logger.info({ targetId, action }, 'sandbox control');
        return sendJson(res, 202, targetView(targetId));
      }
    }

    if (resource === 'sessions') {
      if (parts.length === 2) {
        if (req.method !== 'GET') throw methodNotAllowed(req.method, path, ['GET']);
        return sendJson(res, 200, registry.list().map((r) => summary(r.sessionId)));
      }
      const sessionId = decodeURIComponent(rawId!);
      if (parts.length === 3) {
        if (req.method !== 'GET') throw methodNotAllowed(req.method, path, ['GET']);
        return sendJson(res, 200, summary(sessionId));
      }
      if (parts.length === 4 && (action === 'block-destination' || action === 'withhold-acks' || action === 'agent-heartbeat-timeout' || action === 'pause-client' || action === 'agent-end')) {
        if (req.method !== 'POST') throw methodNotAllowed(req.method, path, ['POST']);
        const record = registry.get(sessionId);
        if (record === undefined) throw new ControlError(404, 'SessionNotFound', `no session ${sessionId}`);
        if (record.state === 'terminated') throw new ControlError(409, 'SessionTerminated', `session ${sessionId} is terminated (${record.terminatedReason ?? ''})`);
        let applied: boolean;
        if (action === 'agent-heartbeat-timeout' || action === 'pause-client' || action === 'agent-end') applied = faults.requestSessionFault(sessionId, { kind: action });
        else {
          const body = (await readJsonBody(req)) as { ms?: unknown } | null;
          const ms = body?.ms;
          if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1 || ms > 600_000) {
            throw new ControlError(400, 'InvalidArgument', `${action} needs {"ms": <whole milliseconds from 1 to 600000>}, got ${JSON.stringify(ms) ?? 'nothing'}`);
          }
          applied = faults.requestSessionFault(sessionId, { kind: action, ms });
        }
        logger.info({ sessionId, action }, 'sandbox control');
        if (!applied) throw new ControlError(409, 'NoAgent', `session ${sessionId} has no agent yet (no data channel has connected)`);
        return sendJson(res, 202, summary(sessionId));
      }
      if (parts.length === 4 && (action === 'drop' || action === 'expire' || action === 'terminate')) {
        if (req.method !== 'POST') throw methodNotAllowed(req.method, path, ['POST']);
        const record = registry.get(sessionId);
        if (record === undefined) throw new ControlError(404, 'SessionNotFound', `no session ${sessionId}`);
        logger.info({ sessionId, action }, 'sandbox control');
        if (action === 'drop') {
          if (record.state === 'terminated') throw new ControlError(409, 'SessionTerminated', `session ${sessionId} is terminated (${record.terminatedReason ?? ''}); there is no connection to drop`);
          faults.requestDrop(sessionId);
          return sendJson(res, 202, summary(sessionId));
        }
        if (action === 'expire') registry.expire(sessionId);
        else registry.terminate(sessionId, CONTROL_TERMINATE_REASON);
        return sendJson(res, 200, summary(sessionId));
      }
    }
    throw new ControlError(404, 'NotFound', `no control route ${req.method} ${path}; see GET /_sandbox/sessions, /_sandbox/targets, /_sandbox/faults`);
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      let e: ControlError;
      if (err instanceof ControlError) e = err;
      else if (err instanceof SsmApiError) e = new ControlError(err.status, err.type, err.message);
      else if (isBridgeError(err)) e = new ControlError(400, 'InvalidArgument', err.message);
      else {
        logger.error({ err: err instanceof Error ? err.stack ?? err.message : String(err) }, 'sandbox control: unexpected error');
        e = new ControlError(500, 'InternalError', 'unexpected error in the sandbox control API');
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      req.resume();
      sendJson(res, e.status, { error: e.code, message: e.message }, 'application/json', e.headers);
    });
  };
}

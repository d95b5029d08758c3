import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayFaults, SessionTraffic } from '../gateway/gateway.js';
import { ApiError } from '../documents.js';
import type { SessionRegistry } from '../registry.js';
import { readJsonBody, sendJson } from '../api/http.js';

export interface FaultSettings extends GatewayFaults {
  /** Fail this many upcoming ResumeSession calls … */
  failResumeCount: number;
  /** … with 500 InternalServerError or 400 ThrottlingException. */
  failResumeWith: 'InternalServerError' | 'ThrottlingException';
}

export function defaultFaultSettings(): FaultSettings {
  return {
    dropRate: 0,
    duplicateRate: 0,
    reorderRate: 0,
    delayRate: 0,
    delayMs: 0,
    closeAfterMessages: undefined,
    closeAfterBytes: undefined,
    closeEveryMs: undefined,
    refuseDestination: false,
    corruptDigestNext: 0,
    failResumeCount: 0,
    failResumeWith: 'InternalServerError',
  };
}

/** mulberry32: a tiny seeded PRNG, so fault runs are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The sandbox's fault settings, read live by the gateway and the API. Events: `dropRequested` (sessionId). */
export class FaultState extends EventEmitter {
  settings: FaultSettings = defaultFaultSettings();
  readonly random: () => number;

  constructor(seed = 1) {
    super();
    this.random = mulberry32(seed);
  }

  /** Merge validated settings; throws ApiError (400) naming a bad field. */
  update(patch: unknown): FaultSettings {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new ApiError('ValidationException', 400, 'faults: expected a JSON object');
    const next = { ...this.settings };
    for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
      switch (key) {
        case 'dropRate':
        case 'duplicateRate':
        case 'reorderRate':
        case 'delayRate':
          if (typeof value !== 'number' || value < 0 || value > 1) throw new ApiError('ValidationException', 400, `faults.${key} must be a number from 0 to 1`);
          next[key] = value;
          break;
        case 'delayMs':
        case 'corruptDigestNext':
        case 'failResumeCount':
          if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ApiError('ValidationException', 400, `faults.${key} must be a whole number ≥ 0`);
          next[key] = value;
          break;
        case 'closeAfterMessages':
        case 'closeAfterBytes':
        case 'closeEveryMs':
          if (value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) throw new ApiError('ValidationException', 400, `faults.${key} must be a whole number ≥ 0, or null`);
          next[key] = value === null || value === 0 ? undefined : (value as number);
          break;
        case 'refuseDestination':
          if (typeof value !== 'boolean') throw new ApiError('ValidationException', 400, 'faults.refuseDestination must be true or false');
          next.refuseDestination = value;
          break;
        case 'failResumeWith':
          if (value !== 'InternalServerError' && value !== 'ThrottlingException') throw new ApiError('ValidationException', 400, 'faults.failResumeWith must be "InternalServerError" or "ThrottlingException"');
          next.failResumeWith = value;
          break;
        default:
          throw new ApiError('ValidationException', 400, `faults.${key} is not a known fault`);
      }
    }
    this.settings = next;
    return next;
  }

  reset(): void {
    this.settings = defaultFaultSettings();
  }

  takeCorruption(): boolean {
    if (this.settings.corruptDigestNext <= 0) return false;
    this.settings.corruptDigestNext--;
    return true;
  }

  /** The error the next ResumeSession call must fail with, if any. */
  takeResumeFailure(): ApiError | undefined {
    if (this.settings.failResumeCount <= 0) return undefined;
    this.settings.failResumeCount--;
    return this.settings.failResumeWith === 'ThrottlingException'
      ? new ApiError('ThrottlingException', 400, 'Rate exceeded')
      : new ApiError('InternalServerError', 500, 'An internal error occurred (sandbox fault injection).');
  }
}

/**
 * The control API, on the sandbox's own port (loopback):
 * - GET  /_sandbox/sessions                 every session with state and counters
 * - GET  /_sandbox/sessions/<id>            one session
 * - POST /_sandbox/sessions/<id>/drop       cut its WebSocket (it can resume)
 * - POST /_sandbox/sessions/<id>/expire     end it as if it timed out (ResumeSession then gives no token)
 * - POST /_sandbox/sessions/<id>/terminate  end it as TerminateSession does
 * - GET  /_sandbox/faults, POST /_sandbox/faults (merge JSON settings), DELETE /_sandbox/faults (reset)
 */
export function createControlHandler(registry: SessionRegistry, faults: FaultState, live: { traffic(id: string): SessionTraffic | undefined }) {
  const describe = (id: string) => {
    const r = registry.get(id);
    if (!r) return undefined;
    return {
      sessionId: r.sessionId,
      target: r.targetId,
      documentName: r.documentName,
      properties: r.properties,
      state: r.state,
      terminatedReason: r.terminatedReason,
      counters: { ...r.counters, ...(live.traffic(id) ?? {}) },
    };
  };
  return (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      try {
        const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
        const parts = path.split('/').filter(Boolean).slice(1); // drop "_sandbox"
        if (parts[0] === 'faults' && parts.length === 1) {
          if (req.method === 'GET') return sendJson(res, 200, faults.settings);
          if (req.method === 'POST') return sendJson(res, 200, faults.update(await readJsonBody(req)));
          if (req.method === 'DELETE') {
            faults.reset();
            return sendJson(res, 200, faults.settings);
          }
        }
        if (parts[0] === 'sessions') {
          if (parts.length === 1 && req.method === 'GET') return sendJson(res, 200, registry.list().map((r) => describe(r.sessionId)));
          const id = decodeURIComponent(parts[1] ?? '');
          if (!registry.get(id)) throw new ApiError('DoesNotExistException', 404, `no session ${id}`);
          if (parts.length === 2 && req.method === 'GET') return sendJson(res, 200, describe(id));
          if (parts.length === 3 && req.method === 'POST') {
            if (parts[2] === 'drop') {
              faults.emit('dropRequested', id);
              return sendJson(res, 200, { dropped: id });
            }
            if (parts[2] === 'expire') return sendJson(res, 200, { expired: registry.expire(id) });
            if (parts[2] === 'terminate') return sendJson(res, 200, { terminated: registry.terminate(id, 'terminated through the sandbox control API') });
          }
        }
        throw new ApiError('NotFound', 404, `no control route ${req.method} ${path}`);
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError('InternalServerError', 500, String(err));
        sendJson(res, e.status, { __type: e.type, message: e.message });
      }
    })();
  };
}

import type { SandboxConfig } from './config.js';

/** An access key pair the sandbox accepts signatures from. */
export interface SandboxCredential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * The sandbox's own key pair, always accepted and printed in `ssm-bridge sandbox`'s banner. Everything that
 * talks to a sandbox (tests, scripts/demo.ts, the bench) signs with this one constant, so a wrong secret
 * anywhere is a failed signature, not a silent pass. Not frozen: the AWS SDK tags the credentials object it
 * is given (`$source`), and throws on a frozen one.
 */
export const SANDBOX_CREDENTIALS: SandboxCredential = { accessKeyId: 'AKIDSANDBOX', secretAccessKey: 'sandbox' };

/** Access key id → secret: the sandbox's own pair plus the config's `credentials`. */
export function acceptedCredentials(config: Pick<SandboxConfig, 'credentials'>): ReadonlyMap<string, string> {
  const store = new Map<string, string>([[SANDBOX_CREDENTIALS.accessKeyId, SANDBOX_CREDENTIALS.secretAccessKey]]);
  for (const c of config.credentials) store.set(c.accessKeyId, c.secretAccessKey);
  return store;
}

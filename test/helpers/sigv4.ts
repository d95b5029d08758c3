import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { SANDBOX_CREDENTIALS, type SandboxCredential } from '../../src/sandbox/credentials.js';

/** What to sign: the SDK's own signer does it, so the sandbox's verifier is checked against the real thing. */
export interface SignInput {
  method?: string;
  /** Full URL: its host becomes the Host header, its path and query are signed. */
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  service?: string;
  region?: string;
  credentials?: SandboxCredential & { sessionToken?: string };
  signingDate?: Date;
  /** Also send (and sign) x-amz-content-sha256. Default false, as the SSM client does. */
  applyChecksum?: boolean;
}

/** The request's headers plus x-amz-date, authorization (and x-amz-security-token), as @smithy/signature-v4 signs them. */
export async function sdkSignedHeaders(input: SignInput): Promise<Record<string, string>> {
  const url = new URL(input.url);
  const signer = new SignatureV4({
    service: input.service ?? 'ssm',
    region: input.region ?? 'us-east-1',
    credentials: input.credentials ?? SANDBOX_CREDENTIALS,
    sha256: Sha256,
    applyChecksum: input.applyChecksum ?? false,
  });
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signed = await signer.sign(
    {
      method: input.method ?? 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers: { host: url.host, ...input.headers },
      ...(input.body !== undefined ? { body: input.body } : {}),
    },
    input.signingDate ? { signingDate: input.signingDate } : {},
  );
  return signed.headers as Record<string, string>;
}

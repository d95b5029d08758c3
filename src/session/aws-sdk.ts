/**
 * The AWS SDK, as much of it as we use: imported lazily by ./ssm-api.ts (`import('./aws-sdk.js')`). Named
 * re-exports, not the packages' whole namespaces, so the CLI bundle (scripts/build-bundle.mjs) keeps only
 * the client, these three commands, the credential chain and the signer (for the data-channel upgrade, which
 * the client already carries) instead of every SSM operation's schema.
 */
export { ResumeSessionCommand, SSMClient, StartSessionCommand, TerminateSessionCommand } from '@aws-sdk/client-ssm';
export { fromNodeProviderChain } from '@aws-sdk/credential-providers';
export { Sha256 } from '@smithy/core/checksum';
export { SignatureV4 } from '@smithy/signature-v4';

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BridgeError, ErrorCode } from '../errors.js';

/*
 * The parts of the AWS shared config the SDK does not apply as the AWS CLI does, resolved here:
 *  - a profile passed to the client (`--profile`) is used by the SDK for region and credentials, but not for
 *    `endpoint_url` or the profile's `services` section (it reads those from AWS_PROFILE's profile only);
 *  - AWS_DEFAULT_REGION (the AWS CLI's) is not read by the SDK;
 *  - a profile that does not exist is reported as "region is missing" or as missing credentials.
 * Endpoint precedence, as the AWS SDKs and CLI document it: the explicit URL, AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL,
 * the profile's services section (`ssm =` then an indented `endpoint_url = …`), the profile's `endpoint_url`; none
 * of the configured ones when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS or the profile's ignore_configured_endpoint_urls
 * is true. Region: the explicit one, AWS_REGION, AWS_DEFAULT_REGION, the profile's.
 */

type Section = Record<string, string>;

/** Sections of an AWS ini file; a nested property (`ssm =` then indented `endpoint_url = …`) as `ssm.endpoint_url`. */
export function parseAwsIni(text: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  let section: Section | undefined;
  let parent: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      const name = header[1]!.trim().replace(/\s+/g, ' ');
      section = sections.get(name) ?? {};
      sections.set(name, section);
      parent = undefined;
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).replace(/\s[#;].*$/, '').trim();
    if (/^\s/.test(raw) && parent !== undefined) {
      section[`${parent}.${key}`] = value;
    } else {
      section[key] = value;
      parent = value === '' ? key : undefined;
    }
  }
  return sections;
}

function readIni(path: string): Map<string, Section> {
  try {
    return parseAwsIni(readFileSync(path, 'utf8'));
  } catch {
    return new Map(); // no such file: nothing configured there
  }
}

export interface ResolvedAwsConfig {
  region?: string;
  endpointUrl?: string;
}

export interface AwsConfigInput {
  region?: string;
  profile?: string;
  endpointUrl?: string;
}

/** A URL the SDK can call, or a one-line error naming where the value came from. */
function checkEndpointUrl(url: string, source: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    const hint = /^[\w.-]+:\d+$/.test(url) ? `; did you mean http://${url}?` : ', e.g. http://127.0.0.1:4566';
    throw new BridgeError(ErrorCode.INVALID_ARGUMENT, `${source} must be an http:// or https:// URL (got ${JSON.stringify(url)})${hint}`);
  }
  return url;
}

const isTrue = (value: string | undefined): boolean => value?.trim().toLowerCase() === 'true';

/** Region and endpoint for the SSM client, as the AWS CLI would pick them; throws on a profile that does not exist. */
export function resolveAwsConfig(input: AwsConfigInput, env: NodeJS.ProcessEnv = process.env): ResolvedAwsConfig {
  const home = env.HOME || homedir();
  const configPath = env.AWS_CONFIG_FILE || join(home, '.aws', 'config');
  const credentialsPath = env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials');
  const profileName = input.profile ?? (env.AWS_PROFILE || undefined);
  const config = readIni(configPath);
  const profileKey = (name: string): string => (name === 'default' ? 'default' : `profile ${name}`);
  let profile: Section = {};
  if (profileName !== undefined) {
    const inConfig = config.get(profileKey(profileName)) ?? (profileName === 'default' ? config.get('profile default') : undefined);
    const inCredentials = readIni(credentialsPath).get(profileName);
    if (!inConfig && !inCredentials && profileName !== 'default') {
      const via = input.profile !== undefined ? '--profile' : 'AWS_PROFILE';
      throw new BridgeError(
        ErrorCode.INVALID_ARGUMENT,
        `AWS profile "${profileName}" (${via}) is in neither ${configPath} nor ${credentialsPath}; check the name (aws configure list-profiles)`,
      );
    }
    profile = inConfig ?? {};
  } else {
    profile = config.get('default') ?? {};
  }

  const region = input.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || profile.region || undefined;

  let endpointUrl: string | undefined;
  if (input.endpointUrl) {
    endpointUrl = checkEndpointUrl(input.endpointUrl, '--endpoint-url');
  } else if (!isTrue(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) && !isTrue(profile.ignore_configured_endpoint_urls)) {
    const services = profile.services ? config.get(`services ${profile.services}`) : undefined;
    const name = profileName ?? 'default';
    const candidates: Array<[string | undefined, string]> = [
      [env.AWS_ENDPOINT_URL_SSM, 'AWS_ENDPOINT_URL_SSM'],
      [env.AWS_ENDPOINT_URL, 'AWS_ENDPOINT_URL'],
      [services?.['ssm.endpoint_url'], `ssm endpoint_url of [services ${profile.services}] (profile "${name}")`],
      [profile.endpoint_url, `endpoint_url of profile "${name}"`],
    ];
    const found = candidates.find(([value]) => value);
    if (found) endpointUrl = checkEndpointUrl(found[0]!, found[1]);
  }
  return { ...(region ? { region } : {}), ...(endpointUrl ? { endpointUrl } : {}) };
}

import { isIP } from 'node:net';
import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { PROVIDER_URL_VARIABLES, STAGES, type StageConfig } from './stage-config';

export class StageConfigError extends Error {
  override readonly name = 'StageConfigError';
}

/** The configuration of the stage named by `-c stage=…`, validated; anything else names the stages. */
export function stageConfig(name: unknown, stages: Readonly<Record<string, StageConfig>> = STAGES): StageConfig {
  const known = Object.keys(stages);
  if (typeof name !== 'string' || !Object.hasOwn(stages, name)) {
    const given = name === undefined ? 'no stage was given' : `unknown stage ${JSON.stringify(name)}`;
    throw new StageConfigError(`${given}: choose one with -c stage=<${known.join('|')}>`);
  }
  const config = stages[name]!;
  const problems = stageConfigProblems(config);
  if (config.stage !== name) problems.unshift(`stage is "${config.stage}" but is listed as "${name}"`);
  if (problems.length > 0) throw new StageConfigError(`stage ${name} is misconfigured:\n  - ${problems.join('\n  - ')}`);
  return config;
}

const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const ALLOCATION_ID = /^eipalloc-[0-9a-f]{8,17}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const ROUTE_PATH = /^(\/(\{\w+\}|[A-Za-z0-9._-]+))+$/;
const DOMAIN = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$/;
const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/;

function isAddressOrCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function baseUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:') return 'must use https';
  if (value.endsWith('/') || url.search || url.hash) return 'must be a base URL without a trailing slash, query or fragment';
  return undefined;
}

/** Every problem in one stage's configuration, so an engineer fixes them in one pass. */
export function stageConfigProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  if (!ACCOUNT.test(config.account)) problems.push(`account "${config.account}" must be 12 digits`);
  if (!REGION.test(config.region)) problems.push(`region "${config.region}" is not a region name`);
  for (const variable of PROVIDER_URL_VARIABLES) {
    const problem = baseUrlProblem(config.providerUrls[variable] ?? '');
    if (problem) problems.push(`providerUrls.${variable} ${problem}`);
  }
  for (const [provider, settings] of Object.entries(config.providerSettings)) {
    for (const name of Object.keys(settings ?? {})) {
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) problems.push(`providerSettings.${provider}.${name} is not an environment variable name`);
      if ((PROVIDER_URL_VARIABLES as readonly string[]).includes(name)) problems.push(`providerSettings.${provider}.${name} belongs in providerUrls`);
    }
  }
  for (const [path, addresses] of Object.entries(config.ipAllowlists)) {
    if (!ROUTE_PATH.test(path)) problems.push(`ipAllowlists key "${path}" is not a route path`);
    if (addresses.length === 0) problems.push(`ipAllowlists["${path}"] is empty; remove the entry to leave the path open`);
    for (const address of addresses) if (!isAddressOrCidr(address)) problems.push(`ipAllowlists["${path}"] has "${address}", not an IP address or CIDR`);
  }
  const { availabilityZones, elasticIps } = config.egress;
  if (!Number.isInteger(availabilityZones) || availabilityZones < 1 || availabilityZones > 3) {
    problems.push('egress.availabilityZones must be 1, 2 or 3');
  }
  if (elasticIps) {
    if (elasticIps.length !== availabilityZones) {
      problems.push(`egress.elasticIps lists ${elasticIps.length} addresses for ${availabilityZones} availability zones (one NAT gateway each)`);
    }
    for (const { allocationId, publicIp } of elasticIps) {
      if (!ALLOCATION_ID.test(allocationId)) problems.push(`egress.elasticIps allocation "${allocationId}" is not an eipalloc- id`);
      if (isIP(publicIp) !== 4) problems.push(`egress.elasticIps address "${publicIp}" is not an IPv4 address`);
    }
    const ids = elasticIps.map((ip) => ip.allocationId);
    if (new Set(ids).size !== ids.length) problems.push('egress.elasticIps repeats an allocation id');
  }
  if (!Object.values(RetentionDays).includes(config.logRetention)) problems.push(`logRetention ${config.logRetention} is not a CloudWatch Logs retention`);
  if (!EMAIL.test(config.alarmEmail)) problems.push(`alarmEmail "${config.alarmEmail}" is not an e-mail address`);
  if (config.customDomain) {
    const { domainName, certificateArn } = config.customDomain;
    if (!DOMAIN.test(domainName)) problems.push(`customDomain.domainName "${domainName}" is not a lower-case domain name`);
    if (!CERTIFICATE_ARN.test(certificateArn)) problems.push('customDomain.certificateArn is not an ACM certificate ARN');
    else if (certificateArn.split(':')[3] !== config.region) problems.push('customDomain.certificateArn must be in the stage region (regional endpoint)');
  }
  const { rateLimit, burstLimit } = config.apiThrottle;
  if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) problems.push('apiThrottle needs a positive rateLimit and burstLimit');
  if (!Number.isInteger(config.apaceClaimWindowSeconds) || config.apaceClaimWindowSeconds <= 0) {
    problems.push('apaceClaimWindowSeconds must be a positive whole number');
  }
  const { api5xxPercent, pollerLagSeconds } = config.alarmThresholds;
  if (!(api5xxPercent > 0 && api5xxPercent <= 100)) problems.push('alarmThresholds.api5xxPercent must be within (0, 100]');
  if (!(pollerLagSeconds > 0)) problems.push('alarmThresholds.pollerLagSeconds must be positive');
  if (config.stage === 'prod') problems.push(...productionSafetyProblems(config));
  return problems;
}

/** Production holds real money movements: losing the table or the callback host is not an option. */
function productionSafetyProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  if (config.removalPolicy !== RemovalPolicy.RETAIN) problems.push('prod must retain its data (removalPolicy RETAIN)');
  if (!config.tableDeletionProtection) problems.push('prod must protect its table from deletion');
  if (!config.egress.elasticIps) problems.push('prod must pin pre-allocated Elastic IPs so the egress IPs survive a rebuild');
  if (!config.customDomain) problems.push('prod needs a customDomain: callback URLs handed to Apace must survive a rebuild');
  return problems;
}

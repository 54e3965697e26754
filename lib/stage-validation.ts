import { isIP } from 'node:net';
import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DEFAULT_RECEIPT_WAIT_DAYS, fallbackHeldUntilReceipt, parsePayOnReceipt } from '../lambdas/domain/receipt';
import { loadApaceOfferDays } from '../lambdas/providers/apace/config';
import { ITEM_PLACEHOLDERS, ORDER_PLACEHOLDERS, templateProblem } from '../lambdas/providers/apace/offer-links';
import { REVERSAL_PROVIDERS } from '../lambdas/providers/registry';
import { INTERFACE_ENDPOINT_SERVICES, PROVIDER_URL_VARIABLES, STAGES, type StageConfig } from './stage-config';

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
const HOSTED_ZONE_ID = /^Z[A-Z0-9]{1,31}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/;

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
  problems.push(...apaceOfferProblems(config.providerSettings.apace ?? {}));
  problems.push(...receiptProblems(config.providerSettings.ap21 ?? {}));
  problems.push(...receiptWaitProblems(config));
  for (const [path, addresses] of Object.entries(config.ipAllowlists)) {
    if (!ROUTE_PATH.test(path)) problems.push(`ipAllowlists key "${path}" is not a route path`);
    if (addresses.length === 0) problems.push(`ipAllowlists["${path}"] is empty; remove the entry to leave the path open`);
    for (const address of addresses) if (!isAddressOrCidr(address)) problems.push(`ipAllowlists["${path}"] has "${address}", not an IP address or CIDR`);
  }
  problems.push(...egressProblems(config.egress));
  if (!Object.values(RetentionDays).includes(config.logRetention)) problems.push(`logRetention ${config.logRetention} is not a CloudWatch Logs retention`);
  if (!EMAIL.test(config.alarmEmail)) problems.push(`alarmEmail "${config.alarmEmail}" is not an e-mail address`);
  if (config.customDomain) {
    const { domainName, certificateArn } = config.customDomain;
    if (!DOMAIN.test(domainName)) problems.push(`customDomain.domainName "${domainName}" is not a lower-case domain name`);
    if (!CERTIFICATE_ARN.test(certificateArn)) problems.push('customDomain.certificateArn is not an ACM certificate ARN');
    else if (certificateArn.split(':')[3] !== config.region) problems.push('customDomain.certificateArn must be in the stage region (regional endpoint)');
    const zone = config.customDomain.hostedZone;
    if (zone) {
      if (!HOSTED_ZONE_ID.test(zone.id)) problems.push(`customDomain.hostedZone.id "${zone.id}" is not a Route 53 hosted zone id`);
      if (domainName !== zone.name && !domainName.endsWith(`.${zone.name}`)) {
        problems.push(`customDomain.domainName "${domainName}" is not in customDomain.hostedZone.name "${zone.name}"`);
      }
    }
  }
  if (config.providerSecrets === 'create' && config.removalPolicy === RemovalPolicy.RETAIN) {
    problems.push(
      "providerSecrets 'create' with removalPolicy RETAIN: the retained secrets keep their names after cdk destroy and make the next deploy fail; use 'import'",
    );
  }
  if (config.providerSecretsKeyArn !== undefined) {
    if (config.providerSecrets !== 'import') problems.push("providerSecretsKeyArn applies to imported secrets (providerSecrets 'import')");
    if (!KMS_KEY_ARN.test(config.providerSecretsKeyArn)) problems.push('providerSecretsKeyArn is not a KMS key ARN');
  }
  const { rateLimit, burstLimit } = config.apiThrottle;
  if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) problems.push('apiThrottle needs a positive rateLimit and burstLimit');
  if (!Number.isInteger(config.apaceClaimWindowSeconds) || config.apaceClaimWindowSeconds <= 0) {
    problems.push('apaceClaimWindowSeconds must be a positive whole number');
  }
  const { api5xxPercent, api5xxMinimumCount, pollerLagSeconds, allowlistedRoute4xx } = config.alarmThresholds;
  if (!(api5xxPercent > 0 && api5xxPercent <= 100)) problems.push('alarmThresholds.api5xxPercent must be within (0, 100]');
  if (!Number.isInteger(api5xxMinimumCount) || api5xxMinimumCount < 1) problems.push('alarmThresholds.api5xxMinimumCount must be a whole number of at least 1');
  if (!(pollerLagSeconds > 0)) problems.push('alarmThresholds.pollerLagSeconds must be positive');
  if (!Number.isInteger(allowlistedRoute4xx) || allowlistedRoute4xx < 1)
    problems.push('alarmThresholds.allowlistedRoute4xx must be a whole number of at least 1');
  if (config.stage === 'prod') problems.push(...productionSafetyProblems(config));
  return problems;
}

function egressProblems(egress: StageConfig['egress']): string[] {
  const problems: string[] = [];
  const { availabilityZones, natGateways, elasticIpAllocationIds, interfaceEndpoints } = egress;
  if (!Number.isInteger(availabilityZones) || availabilityZones < 1 || availabilityZones > 3) {
    problems.push('egress.availabilityZones must be 1, 2 or 3');
  }
  if (!Number.isInteger(natGateways) || natGateways < 1 || natGateways > availabilityZones) {
    problems.push(`egress.natGateways must be between 1 and egress.availabilityZones (${availabilityZones})`);
  }
  if (elasticIpAllocationIds) {
    if (elasticIpAllocationIds.length !== natGateways) {
      problems.push(`egress.elasticIpAllocationIds lists ${elasticIpAllocationIds.length} allocations for ${natGateways} NAT gateways (one Elastic IP each)`);
    }
    for (const id of elasticIpAllocationIds) {
      if (isIP(id))
        problems.push(`egress.elasticIpAllocationIds has the address "${id}": name its allocation (eipalloc-…); the stack reads the address from AWS`);
      else if (!ALLOCATION_ID.test(id)) problems.push(`egress.elasticIpAllocationIds has "${id}", not an eipalloc- id`);
    }
    if (new Set(elasticIpAllocationIds).size !== elasticIpAllocationIds.length) problems.push('egress.elasticIpAllocationIds repeats an allocation');
  }
  const unknown = interfaceEndpoints.filter((service) => !(INTERFACE_ENDPOINT_SERVICES as readonly string[]).includes(service));
  if (unknown.length > 0) problems.push(`egress.interfaceEndpoints has ${unknown.join(', ')}; choose from ${INTERFACE_ENDPOINT_SERVICES.join(', ')}`);
  if (new Set(interfaceEndpoints).size !== interfaceEndpoints.length) problems.push('egress.interfaceEndpoints repeats a service');
  return problems;
}

/** Production holds real money movements: losing the table or the callback host is not an option. */
function productionSafetyProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  if (config.removalPolicy !== RemovalPolicy.RETAIN) problems.push('prod must retain its data (removalPolicy RETAIN)');
  if (!config.tableDeletionProtection) problems.push('prod must protect its table from deletion');
  if (!config.egress.elasticIpAllocationIds) problems.push('prod must pin pre-allocated Elastic IPs so the egress IPs survive a rebuild');
  if (!config.customDomain) problems.push('prod needs a customDomain: callback URLs handed to Apace must survive a rebuild');
  return problems;
}

/** When money moves (docs/design.md §2.9), checked as the poller and the push route will read it when they start. */
function receiptProblems(settings: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const parsed = parsePayOnReceipt(settings.AP21_PAY_ON_RECEIPT ?? '');
  if ('problem' in parsed) problems.push(`providerSettings.ap21.AP21_PAY_ON_RECEIPT: ${parsed.problem}`);
  const days = settings.AP21_RECEIPT_WAIT_DAYS;
  if (days !== undefined && !(/^\d{1,3}$/.test(days) && Number(days) >= 1 && Number(days) <= 365))
    problems.push(`providerSettings.ap21.AP21_RECEIPT_WAIT_DAYS "${days}" must be a whole number of days from 1 to 365`);
  return problems;
}

/**
 * A stage that pays Apace offers when the return is seen but holds card reversals until receipt
 * makes an Apace refund whose offer expired wait for the receipt before its card is reversed, counted
 * from when the return was seen (docs/design.md §2.9). Unless that wait outlasts the offer, every
 * such fallback is overdue as it starts and lands in manual review at once: refused here.
 */
function receiptWaitProblems(config: StageConfig): string[] {
  const ap21 = config.providerSettings.ap21 ?? {};
  const parsed = parsePayOnReceipt(ap21.AP21_PAY_ON_RECEIPT ?? '');
  if ('problem' in parsed || config.routingPolicy !== 'apace_first') return [];
  const held = REVERSAL_PROVIDERS.filter((provider) => fallbackHeldUntilReceipt(provider, { payOnReceipt: parsed.channels }));
  const waitText = ap21.AP21_RECEIPT_WAIT_DAYS;
  if (held.length === 0 || (waitText !== undefined && !/^\d{1,3}$/.test(waitText))) return [];
  let offerDays: number;
  try {
    offerDays = loadApaceOfferDays({ ...config.providerSettings.apace });
  } catch (error) {
    return [`providerSettings.apace.APACE_OFFER_DAYS: ${(error as Error).message}`];
  }
  const waitDays = waitText === undefined ? DEFAULT_RECEIPT_WAIT_DAYS : Number(waitText);
  if (waitDays > offerDays) return [];
  return [
    `providerSettings.ap21.AP21_RECEIPT_WAIT_DAYS (${waitDays}) must be longer than the Apace offer's APACE_OFFER_DAYS (${offerDays}): ` +
      `this stage pays Apace when the return is seen but holds card reversals (${held.join(', ')}) until Ap21 shows it received, ` +
      'so an Apace refund whose offer expires falls back to a card that waits for the receipt from when the return was seen, and would ' +
      'land in manual review at once (docs/design.md §2.9)',
  ];
}

/** Apace offer delivery and link templates, checked as the dispatcher will check them when it starts. */
function apaceOfferProblems(settings: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const delivery = settings.APACE_OFFER_DELIVERY;
  if (delivery !== undefined && delivery !== 'email' && delivery !== 'event')
    problems.push(`providerSettings.apace.APACE_OFFER_DELIVERY "${delivery}" must be email or event`);
  if (settings.APACE_OFFER_EVENT_BUS !== undefined)
    problems.push('providerSettings.apace.APACE_OFFER_EVENT_BUS is set by the stack (the offer bus it creates), not by stage config');
  const templates = {
    APACE_ORDER_URL_TEMPLATE: ORDER_PLACEHOLDERS,
    APACE_REDIRECT_URL_TEMPLATE: ORDER_PLACEHOLDERS,
    APACE_ITEM_URL_TEMPLATE: ITEM_PLACEHOLDERS,
  };
  for (const [name, allowed] of Object.entries(templates)) {
    const template = settings[name];
    const problem = template === undefined ? undefined : templateProblem(template, allowed);
    if (problem) problems.push(`providerSettings.apace.${name} ${problem}`);
  }
  return problems;
}

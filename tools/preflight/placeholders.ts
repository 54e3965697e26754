import { isIPv4, isIPv6 } from 'node:net';
import { PROVIDER_URL_VARIABLES, type StageConfig } from '../../lib/stage-config';
import { stageConfigProblems } from '../../lib/stage-validation';
import { fill, ok, todo, type Finding } from './findings';

/**
 * The offline half of the preflight: every value in a stage's configuration that is still a
 * placeholder, or that no deploy survives, named with the file, line and key to change. It needs
 * no AWS credentials. The committed stages are full of placeholders on purpose, so that `cdk
 * synth` works on a fresh clone; this is what stands between them and a real deploy.
 */
export interface ConfigSources {
  /** Text of lib/stage-config.ts, to point at lines. */
  readonly stageConfigText: string;
  /** cdk.context.json as committed. */
  readonly context: Readonly<Record<string, unknown>>;
}

export const STAGE_CONFIG_FILE = 'lib/stage-config.ts';

/** Accounts no one owns: AWS's documentation example and one digit repeated (111111111111). */
const PLACEHOLDER_ACCOUNT = /^(\d)\1{11}$|^123456789012$/;

/** Address blocks reserved for documentation (RFC 5737, RFC 3849): no real caller has one. */
const DOCUMENTATION_RANGES = [
  { cidr: '192.0.2.0/24', name: 'TEST-NET-1' },
  { cidr: '198.51.100.0/24', name: 'TEST-NET-2' },
  { cidr: '203.0.113.0/24', name: 'TEST-NET-3' },
  { cidr: '2001:db8::/32', name: 'IPv6 documentation range' },
] as const;

/** Domains reserved for examples and tests (RFC 2606, RFC 6761). */
const EXAMPLE_DOMAIN = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/i;

/** An id whose digits are all zeros but at most one, e.g. eipalloc-00000000000000001 or Z0000000000000000000. */
const mostlyZeros = (text: string) => text.replace(/[^1-9a-f]/gi, '').length <= 1;

interface Range {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

function toBigInt(address: string): { family: 4 | 6; value: bigint } {
  if (isIPv4(address)) return { family: 4, value: address.split('.').reduce((sum, octet) => (sum << 8n) + BigInt(octet), 0n) };
  const [head = '', tail = ''] = address.split('::');
  const groups = (part: string) => (part ? part.split(':') : []);
  const missing = 8 - groups(head).length - groups(tail).length;
  const all = [...groups(head), ...Array<string>(address.includes('::') ? missing : 0).fill('0'), ...groups(tail)];
  return { family: 6, value: all.reduce((sum, group) => (sum << 16n) + BigInt(parseInt(group, 16)), 0n) };
}

function rangeOf(cidr: string): Range | undefined {
  const [address = '', prefixText] = cidr.split('/');
  if (!isIPv4(address) && !isIPv6(address)) return undefined;
  const { family, value } = toBigInt(address);
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  const size = 1n << BigInt(bits - prefix);
  const first = (value / size) * size;
  return { family, first, last: first + size - 1n };
}

/** The documentation block an address or CIDR falls in or overlaps, if any. */
export function documentationRange(addressOrCidr: string): string | undefined {
  const range = rangeOf(addressOrCidr);
  if (!range) return undefined;
  const hit = DOCUMENTATION_RANGES.find((candidate) => {
    const reserved = rangeOf(candidate.cidr)!;
    return reserved.family === range.family && range.first <= reserved.last && reserved.first <= range.last;
  });
  return hit && `${hit.cidr}, ${hit.name}`;
}

export const isExampleDomain = (host: string): boolean => EXAMPLE_DOMAIN.test(host);

/**
 * `lib/stage-config.ts:<line> <key>`: the line of the first place the value is written, so a
 * value shared by stages points at the one constant that holds it.
 */
export function locate(sources: ConfigSources, key: string, value: string): string {
  const lines = sources.stageConfigText.split('\n');
  const index = lines.findIndex((line) => line.includes(`'${value}'`) || line.includes(`"${value}"`));
  return index === -1 ? `${STAGE_CONFIG_FILE} ${key}` : `${STAGE_CONFIG_FILE}:${index + 1} ${key}`;
}

/** What the account must hold that only credentials can check: said when the preflight runs without them. */
export function uncheckedFindings(config: StageConfig): Finding[] {
  return config.providerSecrets === 'import'
    ? [
        todo(
          `Secrets Manager refund-relay/${config.stage}/*`,
          'the stage imports its secrets: each must exist with its keys before the deploy (checked with credentials; README, First-time secret values)',
        ),
      ]
    : [];
}

export function placeholderFindings(config: StageConfig, sources: ConfigSources): Finding[] {
  const at = (key: string, value: string) => locate(sources, `STAGES.${config.stage}.${key}`, value);
  const findings: Finding[] = [];
  for (const problem of stageConfigProblems(config)) findings.push(fill(`${STAGE_CONFIG_FILE} STAGES.${config.stage}`, problem));

  if (PLACEHOLDER_ACCOUNT.test(config.account)) {
    findings.push(fill(at('account', config.account), `placeholder account ${config.account}: the 12-digit id of the AWS account this stage deploys to`));
  }
  const zonesKey = `availability-zones:account=${config.account}:region=${config.region}`;
  if (!Array.isArray(sources.context[zonesKey])) {
    findings.push(
      todo(
        `cdk.context.json "${zonesKey}"`,
        'no availability zones recorded for this account and region: the first synth with credentials looks them up and writes them; commit cdk.context.json so synth keeps working offline',
      ),
    );
  }

  for (const variable of PROVIDER_URL_VARIABLES) {
    const url = config.providerUrls[variable];
    const host = URL.canParse(url) ? new URL(url).hostname : '';
    if (isExampleDomain(host)) findings.push(fill(at(`providerUrls.${variable}`, url), `${url} is a placeholder host: ${providerHostHint(variable)}`));
  }
  if (config.providerSettings.ap21 && !config.providerSettings.ap21.AP21_PAYMENT_PROVIDERS) {
    findings.push(
      todo(
        `${STAGE_CONFIG_FILE} STAGES.${config.stage}.providerSettings.ap21.AP21_PAYMENT_PROVIDERS`,
        "not set: only Refundid payments are recognised, so every other refund waits for an operator. List the retailer's SPayGate entries (README, Configuration)",
      ),
    );
  }

  for (const [path, addresses] of Object.entries(config.ipAllowlists)) {
    for (const address of addresses) {
      const reserved = documentationRange(address);
      if (reserved) {
        findings.push(
          fill(
            at(`ipAllowlists['${path}']`, address),
            `${address} is in ${reserved}, reserved for documentation: every real call to ${path} would get 403 from the resource policy. Name the addresses its caller sends from`,
          ),
        );
      }
    }
  }

  const alarmDomain = config.alarmEmail.split('@')[1] ?? '';
  if (isExampleDomain(alarmDomain)) {
    findings.push(fill(at('alarmEmail', config.alarmEmail), `${config.alarmEmail} is a placeholder: alarms would e-mail no one. The on-call address`));
  }

  for (const allocationId of config.egress.elasticIpAllocationIds ?? []) {
    if (mostlyZeros(allocationId.replace(/^eipalloc-/, ''))) {
      findings.push(
        fill(
          at('egress.elasticIpAllocationIds', allocationId),
          `${allocationId} is a placeholder: the NAT gateways would fail and the stack roll back. Allocate one per NAT gateway ` +
            `(aws ec2 allocate-address --domain vpc --region ${config.region}) and list the AllocationIds`,
        ),
      );
    }
  }
  if (!config.egress.elasticIpAllocationIds) {
    findings.push(
      todo(
        `${STAGE_CONFIG_FILE} STAGES.${config.stage}.egress.elasticIpAllocationIds`,
        'not pinned: the stack allocates the egress IPs and keeps them when deleted. After the first deploy, copy the output EgressIpAllocationIds here so a rebuild keeps the addresses Ap21 and the providers allowlisted',
      ),
    );
  }

  findings.push(...customDomainFindings(config, at));
  if (config.providerSecretsKeyArn && mostlyZeros(config.providerSecretsKeyArn.split('/').pop() ?? '')) {
    findings.push(
      fill(at('providerSecretsKeyArn', config.providerSecretsKeyArn), 'placeholder key: the ARN of the KMS key the imported secrets are encrypted with'),
    );
  }
  return findings.length > 0 ? findings : [ok(`${STAGE_CONFIG_FILE} STAGES.${config.stage}`, 'no placeholders left')];
}

function customDomainFindings(config: StageConfig, at: (key: string, value: string) => string): Finding[] {
  const domain = config.customDomain;
  if (!domain) return [];
  const findings: Finding[] = [];
  if (isExampleDomain(domain.domainName)) {
    findings.push(
      fill(at('customDomain.domainName', domain.domainName), `${domain.domainName} is a placeholder: the host name the callback URLs handed to Apace will use`),
    );
  }
  const [, , , region, account, resource = ''] = domain.certificateArn.split(':');
  if (mostlyZeros(resource.replace(/^certificate\//, '')) || PLACEHOLDER_ACCOUNT.test(account ?? '')) {
    findings.push(
      fill(
        at('customDomain.certificateArn', domain.certificateArn),
        `placeholder certificate: an ACM certificate for ${domain.domainName} in ${config.region} (aws acm request-certificate --domain-name ${domain.domainName} --validation-method DNS --region ${config.region})`,
      ),
    );
  } else if (account !== config.account || region !== config.region) {
    findings.push(
      fill(
        at('customDomain.certificateArn', domain.certificateArn),
        `the certificate must be in the stage's own account ${config.account} and region ${config.region}`,
      ),
    );
  }
  const zone = domain.hostedZone;
  if (zone) {
    if (mostlyZeros(zone.id.replace(/^Z/, '')) || isExampleDomain(zone.name)) {
      findings.push(
        fill(
          at('customDomain.hostedZone', zone.id),
          `placeholder hosted zone ${zone.id} (${zone.name}): the Route 53 public zone ${domain.domainName} is in (aws route53 list-hosted-zones-by-name --dns-name <zone>), or remove hostedZone and create the record yourself`,
        ),
      );
    }
  } else {
    findings.push(
      todo(
        `DNS record ${domain.domainName}`,
        `after the deploy, create it where ${domain.domainName} is hosted: a CNAME to the stack output CustomDomainTarget (the output CustomDomainDnsRecord spells it out). Until then the callback URLs do not resolve; name a Route 53 zone in customDomain.hostedZone to have the stack create it`,
      ),
    );
  }
  return findings;
}

function providerHostHint(variable: (typeof PROVIDER_URL_VARIABLES)[number]): string {
  return variable === 'AP21_API_URL' ? "the retailer's Ap21 Retail API base URL (ends in /RetailAPI)" : 'the provider base URL (README, Providers)';
}
